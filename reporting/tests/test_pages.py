"""The dashboard pages: login required, numbers equal to the stored snapshots and the
engine, and query counts that do not grow with the portfolio."""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from django.core.cache import cache
from django.core.management import call_command

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import (
    Portfolio,
    PortfolioSnapshot,
    PriceBar,
    StateVersion,
    Strategy,
    StrategySnapshot,
    Trade,
)
from portfolio.services.config import allocation_spec_read
from reporting.engine.performance import performance_stats
from risk.models import RiskLimit, Violation
from risk.services import risk_spec_read

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEMO = CONFIG / "strategy_allocation.yaml"
PAGES = ("/", "/risk/", "/performance/", "/strategy/momentum_60/", "/config/")
pytestmark = pytest.mark.django_db

# Queries per page, whatever the number of days, trades or strategies: session, user, the
# live portfolio, then the page's selectors (each history is one values_list into pandas).
# Pinned with two sizes below (3 vs 9 months of history; 5 vs 3 strategies). The config
# page's 11: its 7 selectors now include the audit trail and the unacknowledged violations.
# The strategy page's 17: its trade-approval history is one more; the signal overlay and the
# sizing rationale read the bars' stamp, then every close with the instruments, and the
# positions' last signal fills (issue 14). The risk page's 18: its violation log's review
# column (the linked changes) and review forms (the candidates), the log's count (it is
# paginated), the risk manager's record of the last close and the two of the window it
# measured on (reporting.pages.risk_panels); 20 with the stress panel, read per request
# (the newest stress and shock results' keys, and the stress windows).
# The scenarios page's 8: its stored results' keys (and the rows chosen, once there are
# any), the windows, the shocks and the strategies (reporting.pages.scenarios).
QUERIES = {
    "/": 15,
    "/risk/": 20,
    "/performance/": 7,
    "/performance/?section=trades": 8,
    "/performance/?section=attribution": 10,
    "/performance/?section=rolling": 8,
    "/strategy/mean_reversion_20/": 17,
    "/config/": 11,
    "/scenarios/": 8,
}
# The same pages as JSON for the live update in place (?format=json: the same assembler
# and template, cut into fragments): 2 more, the as-of bar's fills and violations.
QUERIES_JSON = {
    f"{url}{'&' if '?' in url else '?'}format=json": n + 2 for url, n in QUERIES.items()
}
# The performance page, uncached, one section at a time: the history's 3 selectors, plus
# the fills (trades, attribution), the instruments and closes of the sector attribution,
# the benchmark (rolling). The pins below clear the cache before
# each request, so they count every page's cold path (the cached path is pinned in
# test_perf_panels / test_history_read).


def _demo(as_of: date, *, risk: bool = False):
    portfolio = portfolio_configure(
        spec=allocation_spec_read(DEMO),
        risk=risk_spec_read(CONFIG / "risk_limits.yaml") if risk else None,
        source="demo",
    )
    run_update(as_of=as_of, load_prices=False)
    portfolio.refresh_from_db()
    return portfolio


def _text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert match, f"no element {element_id}"
    return match.group(1).strip()


@pytest.mark.parametrize("url", [*PAGES, "/strategy/momentum_60/?format=csv"])
def test_every_page_redirects_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_login_page_uses_the_project_template(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and b"Log in" in response.content


def test_every_page_renders_without_a_portfolio(logged_in):
    for url in ("/", "/risk/", "/performance/", "/config/", "/strategy/"):
        response = logged_in.get(url)
        assert response.status_code == 200, url
    assert logged_in.get("/strategy/nope/").status_code == 404


def test_every_page_renders_for_a_logged_in_user_with_its_charts(logged_in):
    _demo(date(1990, 6, 29))
    expected_charts = {
        "/": ["equity", "sectors"],
        "/risk/": ["leverage", "volatility", "drawdown", "correlation", "risk", "concentration"],
        "/performance/": ["cumulative", "hist-daily", "monthly"],
        "/performance/?section=trades": ["trade-pnl", "hold-time", "win-rate", "frequency"],
        "/performance/?section=attribution": ["contrib-cumulative", "brinson-periods"],
        "/performance/?section=rolling": ["rolling-sharpe", "rolling-vol", "rolling-corr"],
        "/strategy/mean_reversion_20/": ["strategy-equity", "signal"],
        "/config/": [],
    }
    for url, names in expected_charts.items():
        response = logged_in.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        for name in names:
            assert f'id="chart-{name}"' in html and f'id="fig-{name}"' in html, (url, name)
        assert "cdn" not in html.lower(), url
        if names:
            assert "/static/js/plotly.min.js" in html and "/static/js/dashboard.js" in html


def test_the_overview_shows_the_stored_snapshot_and_engine_numbers(logged_in):
    portfolio = _demo(date(1990, 6, 29))
    snaps = list(PortfolioSnapshot.objects.order_by("-date")[:2])
    snap, previous = snaps
    html = logged_in.get("/").content.decode()
    assert _text(html, "total-value") == f"{float(snap.equity):,.2f}"
    assert _text(html, "pnl-today") == f"{float(snap.equity) - float(previous.equity):,.2f}"
    assert _text(html, "return-today") == f"{snap.daily_return * 100:.2f}%"
    total = float(snap.equity) / float(portfolio.initial_capital) - 1
    assert _text(html, "total-return") == f"{total * 100:.2f}%"
    assert _text(html, "leverage") == f"{snap.leverage:,.3f}"
    assert _text(html, "drawdown") == f"{snap.drawdown * 100:.2f}%"
    assert _text(html, "positions") == f"{snap.positions_gross} / {snap.positions_net}"
    assert _text(html, "active-strategies") == "5 / 5"
    # each strategy row: return and Sharpe from performance_stats of its stored returns
    # after its funding day (the first snapshot is not a return)
    for s in Strategy.objects.all():
        rows = StrategySnapshot.objects.filter(strategy=s).order_by("date")[1:]
        import pandas as pd

        r = pd.Series([x.daily_return for x in rows], index=pd.to_datetime([x.date for x in rows]))
        stats = performance_stats(r)
        row = re.search(rf'data-href="/strategy/{s.name}/">(.*?)</tr>', html, re.S).group(1)
        assert f"{stats.total_return * 100:.2f}%" in row, s.name
        if stats.sharpe_ratio == stats.sharpe_ratio:
            assert f"{stats.sharpe_ratio:,.2f}" in row, s.name
    assert 'id="last-rebalance"' in html and "on bar 1 of the period" in html
    assert html.count('<li data-kind="') == 20  # the activity feed


def test_the_overview_explains_each_allocation_and_shows_pending_requests(logged_in):
    from portfolio.services.rebalance import rebalance_request

    spec = allocation_spec_read(DEMO)
    portfolio = portfolio_configure(spec=spec, source="demo")
    portfolio.allocation_method, portfolio.allocation_params = "inverse_volatility", {}
    portfolio.save()
    run_update(as_of=date(1990, 6, 29), load_prices=False)
    rebalance_request(portfolio=portfolio, request_key="page-test")
    html = logged_in.get("/").content.decode()
    # June 1990: every book is younger than the 63-day default: static, and it says why
    assert "static weight until it has 63 days of history" in html
    assert "1 manual request pending" in html


def test_query_counts_do_not_grow_with_days_or_trades(logged_in, django_assert_num_queries):
    _demo(date(1990, 3, 30), risk=True)
    small = Trade.objects.count()
    for url, n in {**QUERIES, **QUERIES_JSON}.items():
        cache.clear()  # the strategy page caches the closes: count the cold path
        with django_assert_num_queries(n):
            assert logged_in.get(url).status_code == 200
    run_update(as_of=date(1990, 9, 28), load_prices=False)
    assert Trade.objects.count() > 2 * small
    for url, n in {**QUERIES, **QUERIES_JSON}.items():
        cache.clear()  # the strategy page caches the closes: count the cold path
        with django_assert_num_queries(n):
            assert logged_in.get(url).status_code == 200


def test_query_counts_do_not_grow_with_strategies(logged_in, django_assert_num_queries):
    portfolio = _demo(date(1990, 4, 30), risk=True)
    Strategy.objects.filter(portfolio=portfolio, name__in=["momentum_200", "momentum_120"]).delete()
    assert portfolio.strategies.count() == 3
    for url, n in {**QUERIES, **QUERIES_JSON}.items():
        cache.clear()  # the strategy page caches the closes: count the cold path
        with django_assert_num_queries(n):
            assert logged_in.get(url).status_code == 200


def test_the_risk_page_shows_the_risk_managers_var_and_the_limits(logged_in):
    _demo(date(1990, 6, 29), risk=True)
    html = logged_in.get("/risk/").content.decode()
    snap = PortfolioSnapshot.objects.latest("date")
    assert snap.var_95 is not None  # the risk manager measured it at that close
    assert "var-not-computed" not in html and f"{snap.var_95:.2%}" in html
    assert 'id="chart-var"' in html
    assert f"equity: {snap.leverage:,.3f}; limit 2.00" in html
    assert "limit 25.0%" in html  # max_volatility 0.25
    assert "above 0.70" in html or 'id="correlation-pairs"' in html


def test_before_two_returns_exist_the_risk_page_says_var_is_not_computed(logged_in):
    _demo(date(1990, 1, 3))  # the funding day and one return: no window yet
    html = logged_in.get("/risk/").content.decode()
    assert 'id="var-not-computed"' in html and "Not computed yet" in html


def test_without_limits_the_risk_manager_still_measures_every_bar(logged_in):
    _demo(date(1990, 6, 29))  # no risk limits: measured, never acted on
    last = PortfolioSnapshot.objects.get(date=date(1990, 6, 29))
    assert RiskLimit.objects.count() == 0
    assert None not in (last.volatility, last.var_95, last.cvar_99, last.max_correlation)
    html = logged_in.get("/risk/").content.decode()
    assert "var-not-computed" not in html and "no limit" in html


def test_the_risk_page_says_no_limit_without_risk_limits_and_shows_stored_var(logged_in):
    _demo(date(1990, 6, 29))
    PortfolioSnapshot.objects.filter(date=date(1990, 6, 29)).update(
        var_95=0.0123, var_99=0.0234, cvar_95=0.0155, cvar_99=0.0301
    )
    html = logged_in.get("/risk/").content.decode()
    assert RiskLimit.objects.count() == 0
    assert "no limit" in html
    assert "var-not-computed" not in html
    for shown in ("1.23%", "2.34%", "1.55%", "3.01%"):
        assert shown in html
    assert 'id="chart-var"' in html


def test_the_violation_log_filters_by_severity_strategy_and_date(logged_in):
    portfolio = _demo(date(1990, 3, 30), risk=True)
    Violation.objects.filter(portfolio=portfolio).delete()  # only the two made here
    limit = RiskLimit.objects.get(name="max_leverage")
    s = Strategy.objects.get(name="momentum_60")
    for day, severity, strategy in (
        (date(1990, 2, 1), "high", s),
        (date(1990, 3, 1), "low", None),
    ):
        Violation.objects.create(
            portfolio=portfolio,
            limit=limit,
            severity=severity,
            strategy=strategy,
            date=day,
            value=2.5,
            threshold=2.0,
            action_taken="alert_only",
            message="test",
        )

    def rows(query):
        html = logged_in.get(f"/risk/?{query}").content.decode()
        table = html.split('id="violation-table"')[1].split("</table>")[0]
        return re.findall(r'<tr><td class="date">(\d{4}-\d\d-\d\d)</td>', table)

    assert rows("") == ["1990-03-01", "1990-02-01"]
    assert rows("severity=high") == ["1990-02-01"]
    assert rows("strategy=momentum_60") == ["1990-02-01"]
    assert rows("date_from=1990-02-15") == ["1990-03-01"]
    assert rows("date_to=1990-02-15&severity=low") == []
    assert rows("severity=bogus") == ["1990-03-01", "1990-02-01"]  # unknown: ignored


def test_the_performance_page_takes_a_rolling_window(logged_in):
    _demo(date(1990, 9, 28))
    assert (
        "Rolling Sharpe ratio (30 days)"
        in logged_in.get("/performance/?section=rolling&window=30").content.decode()
    )
    assert (
        "Rolling Sharpe ratio (60 days)"
        in logged_in.get("/performance/?section=rolling&window=7").content.decode()
    )


def test_the_strategy_page_lists_its_trades_and_exports_them_all_as_csv(logged_in):
    _demo(date(1990, 6, 29))
    s = Strategy.objects.get(name="mean_reversion_20")
    html = logged_in.get(f"/strategy/{s.name}/").content.decode()
    n = Trade.objects.filter(strategy=s).count()
    assert f"{n} fills, newest first" in html
    assert 'id="strategy-selector"' in html and "momentum_120" in html
    response = logged_in.get(f"/strategy/{s.name}/?format=csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:4] == ["date", "strategy", "ticker", "side"]
    assert len(rows) == n + 1 and {r[1] for r in rows[1:]} == {s.name}
    first = Trade.objects.filter(strategy=s).order_by("date", "id").first()
    assert rows[1][0] == first.date.isoformat() and rows[1][2] == first.instrument.ticker


def _trade_pages(queries, rows: int) -> list[str]:
    """The paged reads of the trades among ``queries`` (``selectors.trade_frame_pages``)."""
    return [
        q["sql"] for q in queries if '"portfolio_trade"' in q["sql"] and f"LIMIT {rows}" in q["sql"]
    ]


def test_the_strategy_csv_is_read_piece_by_piece_and_equals_the_whole_trades_export(
    logged_in, monkeypatch, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reporting import exports

    portfolio = _demo(date(1990, 6, 29))
    s = Strategy.objects.get(name="mean_reversion_20")
    n = Trade.objects.filter(strategy=s).count()
    assert n > 20
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 7)  # pieces of 7 fills
    whole = exports.export_bytes({"trades": exports.trades_frame(portfolio, strategy=s)}, "csv")
    response = logged_in.get(f"/strategy/{s.name}/?format=csv")
    with CaptureQueriesContext(connection) as queries:
        chunks = list(response.streaming_content)
    assert b"".join(chunks) == whole  # header once, every fill, the export's own CSV
    assert response["Content-Disposition"] == f'attachment; filename="trades-{s.name}.csv"'
    pieces = -(-n // 7) + (n % 7 == 0)  # a full last piece asks once more, for nothing
    assert len(chunks) == -(-n // 7) and len(_trade_pages(queries, 7)) == pieces


def test_under_asgi_the_strategy_csv_is_sent_as_it_is_read_not_read_whole_first(
    client, user, monkeypatch
):
    from asgiref.sync import async_to_sync
    from django.db import connection
    from django.test import AsyncClient

    from reporting import exports

    _demo(date(1990, 6, 29))
    s = Strategy.objects.get(name="mean_reversion_20")
    n = Trade.objects.filter(strategy=s).count()
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 7)
    client.force_login(user)
    expected = b"".join(client.get(f"/strategy/{s.name}/?format=csv").streaming_content)
    asgi = AsyncClient()
    asgi.force_login(user)
    reads_before_each_chunk: list[int] = []

    reads: list[str] = []

    def count(execute, sql, params, many, context):  # every SQL statement, as it runs
        reads.append(sql)
        return execute(sql, params, many, context)

    async def download():  # driven from this thread: the ORM runs in the test transaction
        response = await asgi.get(f"/strategy/{s.name}/?format=csv")
        assert response.is_async  # a sync iterator would be read whole before a byte
        parts = []
        async for part in response:  # what Django's ASGIHandler does to send it
            reads_before_each_chunk.append(len(_trade_pages([{"sql": q} for q in reads], 7)))
            parts.append(part)
        return b"".join(parts)

    with connection.execute_wrapper(count):
        assert async_to_sync(download)() == expected
    # chunk k goes out after k reads: the body is sent as it is read
    assert reads_before_each_chunk == list(range(1, -(-n // 7) + 1))


def test_the_strategy_page_shows_trade_win_rate_average_pnl_and_adverse_excursion(logged_in):
    from reporting.pages.strategy import _trade_risk
    from reporting.selectors import trade_frame

    portfolio = _demo(date(1990, 9, 28))
    s = Strategy.objects.get(name="mean_reversion_20")
    html = logged_in.get(f"/strategy/{s.name}/").content.decode()
    risk = _trade_risk(trade_frame(portfolio=portfolio, strategy=s), date(1990, 9, 28))
    # every closing fill is a round trip; win rate over the non-zero realized P&Ls
    closing = [float(t.realized_pnl) for t in Trade.objects.filter(strategy=s)]
    nonzero = [p for p in closing if p != 0]
    assert risk["win_rate"] == pytest.approx(sum(p > 0 for p in nonzero) / len(nonzero))
    assert risk["average_pnl"] == pytest.approx(sum(nonzero) / len(nonzero))
    assert _text(html, "trips-count") == str(risk["count"])
    # one MAE by hand: the worst close against the position from the first lot's entry
    # through the exit, against the cost basis (a fill price, slippage included)
    trip = risk["recent"][0]
    closes = [
        float(b.close)
        for b in PriceBar.objects.filter(
            instrument__ticker=trip["ticker"], date__gte=trip["entry"], date__lte=trip["exit"]
        ).order_by("date")
    ]
    long_side = (
        Trade.objects.filter(strategy=s, instrument__ticker=trip["ticker"], date=trip["exit"])
        .first()
        .side
        == "sell"
    )
    # the first lot was a fill of this ticker on the entry date
    assert Trade.objects.filter(
        strategy=s, instrument__ticker=trip["ticker"], date=trip["entry"]
    ).exists()
    basis = trip["entry_price"]
    moves = [(c - basis) / basis for c in closes]
    expected = max(0.0, -min(moves)) if long_side else max(0.0, max(moves))
    assert trip["mae"] == pytest.approx(expected, rel=1e-12)
    table = html.split('id="recent-trips"')[1].split("</table>")[0]
    row = (
        f'<tr><td>{trip["ticker"]}</td><td class="date">{trip["entry"]:%Y-%m-%d}</td>'
        f'<td class="date">{trip["exit"]:%Y-%m-%d}</td><td>{basis:,.2f}</td>'
        f"<td>{trip['pnl']:,.2f}</td>"
        f"<td>{trip['mae'] * 100:.2f}%</td></tr>"
    )
    assert row in table


def test_the_adverse_excursion_starts_at_the_first_lot_and_is_measured_against_the_cost():
    import pandas as pd

    from reporting.pages.strategy import _trade_risk

    # Two MSFT lots then one sell of both. hold = (100 x 57 + 300 x 28) / 400 = 35.25
    # days, so the old synthetic entry was Feb 28 - 35 = Jan 24: its close (0.392) is
    # the lowest close from then to the exit (MAE 0). The worst close, 0.372 on Jan 12,
    # falls between the first buy and that date; the cost basis is
    # (100 x 0.3845 + 300 x 0.4004) / 400 = 0.396425.
    fills = pd.DataFrame(
        [
            ("m", "MSFT", "1990-01-02", "buy", 100.0, 0.3845, 0.0),
            ("m", "MSFT", "1990-01-31", "buy", 300.0, 0.4004, 0.0),
            ("m", "MSFT", "1990-02-28", "sell", 400.0, 0.4266, 12.0),
        ],
        columns=["strategy", "ticker", "date", "side", "quantity", "price", "realized_pnl"],
    ).assign(date=lambda f: pd.to_datetime(f["date"]))
    risk = _trade_risk(fills, date(1990, 2, 28))
    bars = PriceBar.objects.filter(
        instrument__ticker="MSFT", date__gte=date(1990, 1, 2), date__lte=date(1990, 2, 28)
    ).order_by("date")
    closes = {b.date: float(b.close) for b in bars}
    basis = (100 * 0.3845 + 300 * 0.4004) / 400
    worst_day = min(closes, key=closes.get)
    assert date(1990, 1, 2) < worst_day < date(1990, 1, 24)
    assert min(c for d, c in closes.items() if d >= date(1990, 1, 24)) == closes[date(1990, 1, 24)]
    expected = (basis - closes[worst_day]) / basis
    trip = risk["recent"][0]
    assert (trip["entry"], trip["exit"]) == (date(1990, 1, 2), date(1990, 2, 28))
    assert trip["entry_price"] == pytest.approx(basis, rel=1e-12)
    assert trip["mae"] == pytest.approx(expected, rel=1e-12)
    assert risk["mae_worst"] == pytest.approx(expected, rel=1e-12) and expected > 0.05


def test_the_config_page_links_to_the_admin_for_staff_only(logged_in, user):
    _demo(date(1990, 2, 28), risk=True)
    html = logged_in.get("/config/").content.decode()
    assert "max_leverage" in html and "Static" in html and 'id="actions"' in html
    assert "/admin/" not in html.split("<main")[1]
    user.is_staff = True
    user.save()
    html = logged_in.get("/config/").content.decode()
    assert "/admin/risk/risklimit/" in html and "/admin/portfolio/strategy/" in html


def test_the_api_lists_strategies_for_a_logged_in_user(logged_in, client):
    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    data = logged_in.get("/api/strategies/").json()
    assert data["count"] == 5
    client.logout()
    assert client.get("/api/strategies/").status_code == 401


def test_the_pages_link_their_tables_as_csv_and_excel(logged_in):
    portfolio = _demo(date(1990, 3, 30), risk=True)
    for url, tables in (
        ("/", ("equity", "positions", "trades")),
        ("/risk/", ("risk", "violations")),
        ("/performance/", ("equity", "trades")),
    ):
        html = logged_in.get(url).content.decode()
        for table in tables:
            for fmt in ("csv", "xlsx"):
                link = f"/export/{table}.{fmt}?portfolio={portfolio.pk}"
                assert link in html, (url, link)
                assert logged_in.get(link).status_code == 200
        assert f"/export/all.xlsx?portfolio={portfolio.pk}" in html


def test_the_strategy_page_counts_one_return_fewer_than_its_bar_dates(logged_in):
    import pandas as pd

    _demo(date(1990, 3, 30))
    s = Strategy.objects.get(name="mean_reversion_20")  # trades from its 20th day
    rows = list(StrategySnapshot.objects.filter(strategy=s).order_by("date"))
    bar_dates = (
        PriceBar.objects.filter(
            instrument__is_benchmark=False, date__gte=rows[0].date, date__lte=rows[-1].date
        )
        .values("date")
        .distinct()
        .count()
    )
    assert len(rows) == bar_dates  # one snapshot per bar date, the funding day first
    html = logged_in.get(f"/strategy/{s.name}/").content.decode()
    table = html.split('id="strategy-stats"')[1].split("</table>")[0]
    shown = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]*)</td>", table))
    assert shown["Days"] == f"{bar_dates - 1:,d}"
    # the statistics are those of the returns after the funding day
    r = pd.Series(
        [x.daily_return for x in rows[1:]], index=pd.to_datetime([x.date for x in rows[1:]])
    )
    stats = performance_stats(r)
    assert shown["Sharpe ratio"] == f"{stats.sharpe_ratio:.3f}"
    assert shown["Annual return"] == f"{stats.annual_return * 100:.2f}%"


def test_on_the_funding_day_alone_the_pages_show_no_return_statistics(logged_in):
    _demo(date(1990, 1, 2))  # the first bar: one snapshot per book, no return yet
    assert StrategySnapshot.objects.filter(strategy__name="momentum_60").count() == 1
    html = logged_in.get("/strategy/momentum_60/").content.decode()
    table = html.split('id="strategy-stats"')[1].split("</table>")[0]
    assert "<td>Days</td>" not in table
    for url in ("/", "/risk/", "/performance/"):
        assert logged_in.get(url).status_code == 200, url


def test_a_long_closed_and_reopened_on_one_date_keeps_its_adverse_excursion_below_100pc():
    import pandas as pd

    from reporting.pages.strategy import _trade_risk

    # MSFT more than doubled from 1990-01-02 (0.384) to 1991-01-31 (0.848). A long
    # bought on the first date is sold on the second and bought back the same day (in
    # that execution order): its adverse excursion is its worst close below the entry,
    # a few percent; read as a short it would be the rise, about 120 %.
    fills = pd.DataFrame(
        [
            ("m", "MSFT", "1990-01-02", "buy", 100.0, 0.0),
            ("m", "MSFT", "1991-01-31", "sell", 100.0, 46.4),
            ("m", "MSFT", "1991-01-31", "buy", 100.0, 0.0),
        ],
        columns=["strategy", "ticker", "date", "side", "quantity", "realized_pnl"],
    ).assign(date=lambda f: pd.to_datetime(f["date"]))
    risk = _trade_risk(fills, date(1991, 1, 31))
    closes = [
        float(b.close)
        for b in PriceBar.objects.filter(
            instrument__ticker="MSFT", date__gte=date(1990, 1, 2), date__lte=date(1991, 1, 31)
        ).order_by("date")
    ]
    assert closes[-1] / closes[0] > 2
    expected = max(0.0, 1 - min(closes) / closes[0])  # the long's worst close
    assert risk["count"] == 1 and risk["mae_count"] == 1
    assert risk["mae_worst"] == pytest.approx(expected, rel=1e-12)
    assert risk["mae_worst"] < 0.05


def test_no_long_only_book_shows_an_adverse_excursion_above_100pc(logged_in):
    from reporting.engine.trades import round_trips
    from reporting.pages.strategy import _trade_risk
    from reporting.selectors import trade_frame

    portfolio = _demo(date(1991, 6, 28))
    measured = 0
    # the momentum books are long-only (top-N longs); mean reversion also shorts
    for s in Strategy.objects.filter(portfolio=portfolio, name__startswith="momentum"):
        fills = trade_frame(portfolio=portfolio, strategy=s)
        assert round_trips(fills)["side"].eq(1).all(), s.name
        risk = _trade_risk(fills, date(1991, 6, 28))
        if risk and risk["mae_count"]:
            measured += risk["mae_count"]
            assert 0 <= risk["mae_worst"] <= 1, s.name
    assert measured > 0


def _strategy_table_column(html: str, header: str) -> dict[str, float]:
    """strategy -> data-value of the overview strategy table's column whose header starts
    with ``header``."""
    table = html.split('id="strategy-table"')[1].split("</table>")[0]
    heads = [
        re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", table)
    ]
    col = next(i for i, h in enumerate(heads) if h.startswith(header))
    values = {}
    for row in re.findall(r"<tr class=\"link-row\"[^>]*>(.*?)</tr>", table, re.S):
        cells = re.findall(r"<td([^>]*)>(.*?)</td>", row, re.S)
        name = re.sub(r"<[^>]+>", "", cells[0][1]).strip()
        values[name] = float(re.search(r'data-value="([^"]*)"', cells[col][0]).group(1))
    return values


def test_with_leverage_target_1_5_the_book_capital_sums_to_the_portfolio_equity(logged_in):
    from portfolio.engine.config_schema import parse_allocation_config
    from portfolio.services.config import yaml_read

    data = yaml_read(DEMO)
    data["portfolio"]["leverage_target"] = 1.5
    for s in data["strategies"]:
        s["allocation"] *= 1.5  # they must sum to the leverage target
    portfolio_configure(spec=parse_allocation_config(data, source="test"), source="test")
    run_update(as_of=date(1990, 6, 29), load_prices=False)
    snap = PortfolioSnapshot.objects.latest("date")
    html = logged_in.get("/").content.decode()
    capital = _strategy_table_column(html, "Capital")
    books = {b.strategy.name: b for b in StrategySnapshot.objects.filter(date=snap.date)}
    assert set(capital) == set(books) and len(books) == 5
    # each book's capital is its equity; together they are the portfolio (not 1.5x it)
    assert sum(capital.values()) == pytest.approx(float(snap.equity), rel=1e-12)
    exposure = _strategy_table_column(html, "Gross exposure")
    for name, b in books.items():
        assert capital[name] == pytest.approx(float(b.equity), rel=1e-12)
        assert exposure[name] == pytest.approx(
            float(b.long_exposure) + float(b.short_exposure), rel=1e-12
        )
    # an invested book is levered: its exposure is more than the capital behind it
    # (June 1990: the momentum books are still in cash, waiting for 200 days of history)
    invested = [n for n in books if exposure[n] > 0]
    assert invested and all(exposure[n] > 1.2 * capital[n] for n in invested)


def test_the_risk_page_shows_both_drawdowns_and_when_the_limits_peak_moved(logged_in):
    portfolio = _demo(date(1990, 6, 29), risk=True)
    last = PortfolioSnapshot.objects.get(portfolio=portfolio, date=date(1990, 6, 29))
    html = logged_in.get("/risk/").content.decode()
    assert 'id="drawdown-reference"' in html and "it has not: the peak is the all-time one" in html
    assert f"{last.drawdown:.2%}" in html and f"{last.risk['limit_drawdown']:.2%}" in html
    limit = RiskLimit.objects.get(portfolio=portfolio, name="max_drawdown")
    Violation.objects.create(
        portfolio=portfolio,
        limit=limit,
        severity="critical",
        date=date(1990, 5, 1),
        value=-0.16,
        threshold=-0.15,
        action_taken="liquidate_all",
    )
    html = logged_in.get("/risk/").content.decode()
    assert "on 1990-05-01, by max_drawdown: the reference peak moved" in html


def test_a_backtest_portfolio_is_shown_on_every_page_when_picked_and_the_choice_sticks(
    logged_in, tmp_path
):
    live = _demo(date(1990, 6, 29), risk=True)
    call_command(
        "backtest",
        config=str(DEMO),
        risk=str(CONFIG / "risk_limits.yaml"),
        end="1990-03-30",
        name="bt",
        stdout=io.StringIO(),
    )
    bt = Portfolio.objects.get(name="bt")
    html = logged_in.get("/").content.decode()
    assert 'id="portfolio-picker"' in html and 'id="backtest-banner"' not in html
    assert f'<option value="{bt.pk}">bt (backtest)</option>' in html
    html = logged_in.get(f"/risk/?portfolio={bt.pk}").content.decode()
    assert 'id="backtest-banner"' in html and f'data-portfolio="{bt.pk}"' in html
    assert "As of the close of 1990-03-30" in html  # the backtest's last bar, not the live one
    # the choice holds for the session, on every page
    for url in ("/", "/risk/", "/performance/", "/config/", "/strategy/momentum_60/"):
        html = logged_in.get(url).content.decode()
        assert f'data-portfolio="{bt.pk}"' in html and 'id="backtest-banner"' in html, url
    html = logged_in.get("/?portfolio=live").content.decode()
    assert f'data-portfolio="{live.pk}"' in html and 'id="backtest-banner"' not in html
    assert f'data-portfolio="{live.pk}"' in logged_in.get("/risk/").content.decode()
    assert logged_in.get("/?portfolio=abc").status_code == 400
    assert logged_in.get("/?portfolio=99999").status_code == 404


def test_each_pages_json_carries_the_version_fragments_and_figures_of_its_html(logged_in):
    portfolio = _demo(date(1990, 3, 30), risk=True)
    version = StateVersion.objects.get(portfolio=portfolio).version
    expected = {
        "/": ({"as-of", "key-metrics", "activity", "table:strategy-table"}, {"fig-equity"}),
        "/risk/": ({"as-of", "var-panel", "table:violation-table"}, {"fig-drawdown"}),
        "/performance/": ({"as-of"}, {"fig-cumulative"}),
        "/strategy/momentum_60/": (
            {"strategy-cards", "table:trade-table"},
            {"fig-strategy-equity"},
        ),
        "/config/": (set(), set()),  # its forms stay put: nothing marked, no tables cut
    }
    for url, (fragments, figures) in expected.items():
        html = logged_in.get(url).content.decode()
        assert f'data-version="{version}"' in html
        page = logged_in.get(url, {"format": "json"}).json()
        assert page["version"] == version and page["as_of"] == "1990-03-30", url
        assert fragments <= set(page["fragments"]), url
        assert figures <= set(page["figures"]), url
        for key, fragment in page["fragments"].items():
            assert fragment in html, (url, key)  # cut from the very HTML the page shows
        for key in figures:
            assert page["figures"][key]["data"], (url, key)
    page = logged_in.get("/", {"format": "json"}).json()
    assert _text(page["fragments"]["key-metrics"], "total-value") == _text(
        logged_in.get("/").content.decode(), "total-value"
    )
    assert page["numbers"]["equity"] == pytest.approx(portfolio.last_equity)
    trades = Trade.objects.filter(strategy__portfolio=portfolio, date=date(1990, 3, 30)).count()
    violations = Violation.objects.filter(portfolio=portfolio, date=date(1990, 3, 30)).count()
    assert page["bar"] == {"date": "1990-03-30", "trades": trades, "violations": violations}
    assert "main" not in page  # only for a page whose structure changed:
    whole = logged_in.get("/", {"format": "json", "whole": "1"}).json()
    assert whole["main"] in logged_in.get("/").content.decode()
    assert 'id="key-metrics"' in whole["main"] and 'data-figure="fig-equity"' in whole["main"]


def test_the_update_now_button_is_in_every_pages_header_for_staff_only(logged_in, user):
    _demo(date(1990, 3, 30))
    for url in PAGES:
        assert 'id="update-now"' not in logged_in.get(url).content.decode(), url
    user.is_staff = True
    user.save()
    for url in PAGES:
        html = logged_in.get(url).content.decode()
        assert 'id="update-now" data-url="/api/update/"' in html, url
        assert "csrfmiddlewaretoken" in html, url


def test_an_infinite_ratio_reads_infinity_and_a_missing_one_a_dash():
    """A Sortino ratio without a down day or a profit factor without a losing trade is
    +inf (risk.engine.metrics): a figure, shown as ∞, not the dash of a missing one."""
    from reporting.pages.common import finite, shown
    from reporting.templatetags.dashboard import num, pct, stat
    from risk.engine.metrics import sortino_ratio

    ratio = sortino_ratio(np.array([0.01, 0.02, 0.0, 0.01]))
    assert ratio == math.inf and shown(ratio) == math.inf and finite(ratio) is None
    assert stat(shown(ratio), "f") == "∞" and num(-math.inf) == "−∞" and pct(math.inf) == "∞"
    assert shown(math.nan) is None and stat(None, "f") == num(math.nan) == pct(None) == "–"
    assert stat(1.23456, "f") == "1.235" and pct(0.1234) == "12.34%"
