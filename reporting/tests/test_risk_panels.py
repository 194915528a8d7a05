"""The risk page's panels of issue 14, read back from the rendered page and checked against
the engine run independently on the risk manager's own window: VaR/CVaR with intervals,
the marginal and risk contributions, the volatility gauge's target and the paginated
violation log (plus, in Chromium, the page's height at 1400 and 390 px)."""

from __future__ import annotations

import html as html_lib
import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import Portfolio, PortfolioSnapshot, Strategy, StrategySnapshot
from portfolio.services.config import allocation_spec_read
from risk.engine.portfolio_risk import portfolio_risk
from risk.engine.var import empirical_tail
from risk.engine.var_intervals import tail_intervals
from risk.models import RiskLimit, Violation
from risk.services import risk_spec_read

CONFIG = Path(settings.BASE_DIR) / "config"
AS_OF = date(1990, 9, 28)
WINDOW = 60  # config/risk_limits.yaml: measurement.window_bars default


def _demo(as_of: date = AS_OF) -> Portfolio:
    portfolio = portfolio_configure(
        spec=allocation_spec_read(CONFIG / "strategy_allocation.yaml"),
        risk=risk_spec_read(CONFIG / "risk_limits.yaml"),
        source="demo",
    )
    run_update(as_of=as_of, load_prices=False)
    return portfolio


def _risk_window(portfolio: Portfolio):
    """The risk manager's window at the last close, rebuilt here straight from the ORM:
    the unit returns of the WINDOW bar dates before it (the funding day has none), and
    the weights it stored. Returns (snapshot, names, U (T x k), w (k,))."""
    snaps = list(PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date"))
    last = snaps[-1]
    dates = [s.date for s in snaps[1:-1]][-WINDOW:]
    names = list(
        Strategy.objects.filter(portfolio=portfolio).order_by("id").values_list("name", flat=True)
    )
    units = {
        (d, n): u
        for d, n, u in StrategySnapshot.objects.filter(
            strategy__portfolio=portfolio, date__in=dates
        ).values_list("date", "strategy__name", "unit_return")
    }
    u = np.array([[units.get((d, n), 0.0) for n in names] for d in dates])
    w = np.array([last.risk["weights"][n] for n in names])
    return last, names, u, w


def _text(html: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</li>', html, re.S)
    assert m, element_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", m.group(1))).strip()


@pytest.mark.django_db
def test_var_and_cvar_show_the_engines_intervals_on_the_risk_managers_window(logged_in):
    portfolio = _demo()
    last, _, u, w = _risk_window(portfolio)
    p = u @ w
    # the rebuilt window is the one the stored figures came from
    np.testing.assert_allclose(empirical_tail(p, 0.95), [last.var_95, last.cvar_95], rtol=1e-12)
    np.testing.assert_allclose(empirical_tail(p, 0.99), [last.var_99, last.cvar_99], rtol=1e-12)
    html = logged_in.get("/risk/").content.decode()
    for t in tail_intervals(p, (0.95, 0.99), 0.90):
        k = round(t.confidence * 100)
        for kind, value, iv in (("VaR", t.var, t.var_interval), ("CVaR", t.cvar, t.cvar_interval)):
            high = "unbounded" if iv.high == np.inf else f"{iv.high:.2%}"
            expected = f"{kind} {k}% {value:.2%} [{iv.low:.2%}, {high}]"
            assert _text(html, f"{kind.lower()}-{k}") == expected
    # 60 days cannot bound the 99 % VaR from above: 0.99^60 = 0.55 > 0.05
    assert "unbounded" in _text(html, "var-99")
    assert "90% confidence intervals" in html
    # the chart draws the current values with their intervals as error bars
    fig = _figure(html, "var")
    now = [t for t in fig["data"] if t["name"] == "VaR 95% now"]
    assert len(now) == 1
    t95 = tail_intervals(p, (0.95,), 0.90)[0]
    np.testing.assert_allclose(
        now[0]["y"][0] - now[0]["error_y"]["arrayminus"][0], t95.var_interval.low
    )
    np.testing.assert_allclose(
        now[0]["y"][0] + now[0]["error_y"]["array"][0], t95.var_interval.high
    )

    # weights stored for other books (a strategy since added or removed): said so
    other = {**last.risk, "weights": {**last.risk["weights"], "a_book_since_removed": 0.1}}
    PortfolioSnapshot.objects.filter(pk=last.pk).update(risk=other)
    html = logged_in.get("/risk/").content.decode()
    assert _text(html, "var-95") == f"VaR 95% {last.var_95:.2%}"
    assert "the books changed (a strategy added or removed)" in html

    # a close recorded before the weights were stored: its numbers, no made-up interval
    old = {k: v for k, v in last.risk.items() if k not in ("weights", "marginal_contribution")}
    PortfolioSnapshot.objects.filter(pk=last.pk).update(risk=old)
    html = logged_in.get("/risk/").content.decode()
    assert _text(html, "var-95") == f"VaR 95% {last.var_95:.2%}"
    assert "predates the stored risk weights" in html


def _figure(html: str, key: str) -> dict:
    m = re.search(rf'<script type="application/json" id="fig-{key}">(.*?)</script>', html, re.S)
    assert m, key
    return json.loads(m.group(1))


def _cells(html: str, table_id: str) -> dict[str, list[str]]:
    table = html.split(f'id="{table_id}"')[1].split("</table>")[0]
    rows = {}
    for name, body in re.findall(r'<tr data-strategy="([^"]+)">(.*?)</tr>', table, re.S):
        rows[name] = [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)
        ]
    return rows


@pytest.mark.django_db
def test_the_decomposition_shows_each_books_marginal_and_risk_contribution(logged_in):
    portfolio = _demo()
    last, names, u, w = _risk_window(portfolio)
    risk = portfolio_risk(u, w, lookback_days=WINDOW)
    # one volatility: the stored one is the engine's on this window, and the sum of RC
    np.testing.assert_allclose(risk.volatility, last.volatility, rtol=1e-12)
    np.testing.assert_allclose(risk.contributions.absolute.sum(), last.volatility, rtol=1e-9)
    html = logged_in.get("/risk/").content.decode()
    rows = _cells(html, "risk-contributions")
    assert sorted(rows) == sorted(names)
    held = 0
    for i, name in enumerate(names):
        _, _, weight, vol, marginal, rc, share = rows[name]
        assert weight == f"{w[i]:.2%}"
        assert vol == f"{risk.strategy_volatilities[i]:.2%}"
        assert marginal == f"{risk.contributions.marginal[i]:.2%}"
        assert rc == f"{risk.contributions.absolute[i]:.2%}"
        assert share == f"{risk.contributions.percent[i]:.1%}"
        held += w[i] != 0
    assert held >= 2  # the demo holds several books at that close: a real decomposition
    assert f'id="risk-total">{last.volatility:.2%}<' in html
    # the gauge shows the same volatility, no second figure
    assert f"Volatility {last.volatility:.2%} (ex-ante, stored by the risk manager)" in html
    fig = _figure(html, "risk")
    np.testing.assert_allclose(fig["data"][1]["y"], risk.contributions.marginal, rtol=1e-6)
    np.testing.assert_allclose(sum(fig["data"][0]["y"]), 1.0, rtol=1e-6)


@pytest.mark.django_db
def test_the_volatility_gauge_shows_the_configured_target_and_the_limit(logged_in):
    portfolio = _demo(date(1990, 6, 29))
    html = logged_in.get("/risk/").content.decode()
    assert '<span id="volatility-target">no target configured</span>' in html
    # the books' own sizing targets are named as theirs, not the portfolio's
    books = {
        s.name: s.risk_config["volatility_target"]
        for s in Strategy.objects.filter(portfolio=portfolio)
        if "volatility_target" in (s.risk_config or {})
    }
    assert books  # the demo sizes three books toward 24 % and one toward 20 %
    for name, target in books.items():
        assert f"{name} {target:.0%}" in html
    limit = RiskLimit.objects.get(portfolio=portfolio, scope="portfolio", metric="volatility")
    Portfolio.objects.filter(pk=portfolio.pk).update(
        allocation_method="hierarchical_risk_budget",
        allocation_params={"vol_target": 0.12, "lookback": 63},
    )
    html = logged_in.get("/risk/").content.decode()
    assert '<span id="volatility-target">target 12.0%</span>' in html
    gauge = _figure(html, "volatility")["data"][0]
    assert gauge["delta"]["reference"] == 0.12
    assert gauge["gauge"]["steps"][0]["range"] == [0, 0.12]  # the target band
    assert gauge["gauge"]["threshold"]["value"] == limit.threshold  # the red limit
    assert "target 12.0% (green); limit" in gauge["title"]["text"]


@pytest.mark.django_db
def test_the_violation_log_pages_25_at_a_time_and_keeps_its_filters(logged_in):
    portfolio = _demo(date(1990, 3, 30))
    Violation.objects.filter(portfolio=portfolio).delete()
    limit = RiskLimit.objects.get(portfolio=portfolio, name="max_leverage")
    for i in range(60):
        Violation.objects.create(
            portfolio=portfolio,
            limit=limit,
            severity="high" if i % 2 else "low",
            date=date(1990, 1, 1) + (date(1990, 1, 2) - date(1990, 1, 1)) * i,
            value=2.5,
            threshold=2.0,
            action_taken="alert_only",
            message="test",
        )

    def page(query):
        html = logged_in.get(f"/risk/?{query}").content.decode()
        table = html.split('id="violation-table"')[1].split("</table>")[0]
        dates = re.findall(r'<tr><td class="date">(\d{4}-\d\d-\d\d)</td>', table)
        pager = html.split('id="violation-pager"')[1].split("</nav>")[0]
        return dates, html_lib.unescape(re.sub(r"<[^>]+>", "", pager)), pager

    dates, text, _ = page("")
    assert len(dates) == 25 and dates[0] == "1990-03-01"  # newest first (day 59)
    assert "Showing 1–25 of 60" in text and "page 1 of 3" in text
    dates, text, links = page("page=3")
    assert len(dates) == 10 and dates[-1] == "1990-01-01"
    assert "Showing 51–60 of 60" in text
    dates, text, links = page("severity=high&page=2")
    assert len(dates) == 5 and "Showing 26–30 of 30" in text  # 30 high ones
    assert 'href="?severity=high&amp;page=1#violations"' in links  # the filter is kept
    dates, text, _ = page("page=99")  # past the end: the last page
    assert "Showing 51–60 of 60" in text
    assert logged_in.get("/risk/?page=0").status_code == 400


# Last in the module: live_server's transactional teardown flushes the bundled prices, which
# test_browser's module fixture ``prices_restored`` (imported here) loads again afterwards.
from reporting.tests.test_browser import (  # noqa: E402
    CHROMIUM,
    SHOTS,
    _open,
    browser_page,  # noqa: F401 (fixture)
    demo,  # noqa: F401 (fixture)
    prices_restored,  # noqa: F401 (fixture)
)


@pytest.fixture
def long_violation_log(demo):  # noqa: F811 (the imported fixture)
    """412 more violations on the browser demo (made before Playwright's event loop starts:
    the ORM refuses to run inside it); returns how many the log holds."""
    portfolio = Portfolio.objects.get()
    limit = RiskLimit.objects.get(portfolio=portfolio, name="max_leverage")
    Violation.objects.bulk_create(
        Violation(
            portfolio=portfolio,
            limit=limit,
            severity="high",
            date=date(1991, 1, 2),
            value=2.5,
            threshold=2.0,
            action_taken="alert_only",
            message=f"test {i}",
        )
        for i in range(412)
    )
    return Violation.objects.filter(portfolio=portfolio).count()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_the_risk_page_stays_short_with_a_long_violation_log(long_violation_log, browser_page):  # noqa: F811
    page, base = browser_page
    total = long_violation_log
    for width, height in ((1400, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        _open(page, base + "/risk/")
        tall = page.evaluate("document.documentElement.scrollHeight")
        parts = page.evaluate(
            "Array.from(document.querySelectorAll('main section, main > div, main > *'))"
            ".map(e => [e.tagName, e.id || e.className, e.offsetHeight])"
        )
        # the stress testing panel (issue 13) is the page's own, not the log's: counted apart
        stress = page.evaluate("document.getElementById('stress-testing').offsetHeight")
        assert stress < 100, (width, stress)  # no result yet: one line
        described = " | ".join(f"{a}#{b}:{c}" for a, b, c in parts)
        assert tall - stress < 6000, (width, tall, described)
        assert page.locator("#violation-table tbody tr").count() == 25
        assert page.locator("#violation-count").inner_text() == f"Showing 1–25 of {total}"
        # the current VaR with its interval is drawn as a marker with error bars
        bars = page.evaluate(
            "document.getElementById('chart-var').data"
            ".filter(t => t.name === 'VaR 95% now').map(t => t.error_y.array[0] > 0)"
        )
        assert bars == [True]
        assert "[" in page.locator("#var-95").inner_text()
        page.screenshot(path=str(SHOTS / f"risk-panels-{width}.png"), full_page=True)
    assert page.errors == []
