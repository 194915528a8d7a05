"""Per-position stop-losses in the update path: the demo's strategies with stops (fixed,
trailing, with and without a cool-off) leave the same rows however the bars arrive (the
stop state crosses chunks in ``RiskBook.state``), each stop is one ``risk_action`` fill and
one violation of the strategy and ticker that resolves when its cool-off ends, the
cool-off keeps the strategy out of the ticker, and re-running the same bars adds nothing."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command

from operations.config import portfolio_configure
from operations.digest import portfolio_tables, tables_diff, tables_digest
from operations.tests.replay_setup import END, ROOT, configured_tables
from operations.update import portfolio_apply
from portfolio import selectors
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.feeds import BundledProvider
from portfolio.models import Trade
from portfolio.services.prices import prices_load
from risk.models import AlertChannel, AlertDelivery, Violation
from risk.services import risk_spec_read
from risk.services.session import STOP_LIMIT

STOPS = {
    "momentum_60": 0.06,
    "mean_reversion_20": {"level": 0.04, "cooloff_bars": 3},
    "trend_following_50": {"level": 0.05, "trailing": True, "cooloff_bars": 5},
}


@pytest.fixture
def bars(db, settings):
    settings.QUANTSITE_ALERT_MAX_AGE_DAYS = 100_000
    prices_load(provider=BundledProvider(), strict=True, until=END)
    return selectors.price_frame(end=END)


def _configure():
    data = yaml.safe_load((ROOT / "config" / "strategy_allocation.yaml").read_text())
    for s in data["strategies"]:
        if s["name"] in STOPS:
            s["risk_config"]["stop_loss"] = STOPS[s["name"]]
    spec = parse_allocation_config(data, source="demo with stops")
    risk = risk_spec_read(ROOT / "config" / "risk_limits.yaml")
    portfolio = portfolio_configure(spec=spec, risk=risk, source="stops")
    AlertChannel.objects.create(
        portfolio=portfolio, name="hook", kind="webhook", config={"url": "http://127.0.0.1:9/"}
    )
    return portfolio


@pytest.mark.slow
@pytest.mark.django_db
def test_stops_leave_the_same_rows_whichever_way_the_bars_arrive(bars):
    replay = configured_tables(
        _configure, lambda p: portfolio_apply(portfolio=p, closes=bars, chunk_dates=10**6)
    )
    stops = [r for r in replay["violation"] if r[0] == STOP_LIMIT]
    assert {r[1] for r in stops} == set(STOPS)  # every configured stop fired at least once
    assert any(r[8] == "resolved" for r in stops)  # (limit, strategy, ticker, date, ...)
    paths = {
        "chunks of 1": lambda p: portfolio_apply(portfolio=p, closes=bars, chunk_dates=1),
        "chunks of 7": lambda p: portfolio_apply(portfolio=p, closes=bars, chunk_dates=7),
        "split run_update": lambda p: (
            call_command("run_update", as_of="1990-11-15", no_prices=True, verbosity=0),
            call_command("run_update", as_of=END.isoformat(), no_prices=True, verbosity=0),
        ),
    }
    expected = tables_digest(replay)
    for name, apply in paths.items():
        tables = configured_tables(_configure, apply)
        assert tables_digest(tables) == expected, (name, tables_diff(replay, tables))


@pytest.mark.django_db
def test_each_stop_is_one_risk_action_fill_and_one_violation_resolved_after_its_cooloff(bars):
    portfolio = _configure()
    portfolio_apply(portfolio=portfolio, closes=bars, chunk_dates=50)
    stops = Violation.objects.filter(portfolio=portfolio, limit__name=STOP_LIMIT)
    assert stops.count() >= 3
    dates = sorted(selectors.price_frame(end=END).index.date)
    for v in stops.select_related("strategy", "instrument"):
        # the position was closed by one risk_action fill at the breaching close, at the close
        fills = Trade.objects.filter(
            strategy=v.strategy, instrument=v.instrument, date=v.date, reason="risk_action"
        )
        assert [f.price for f in fills] == [pytest.approx(v.value, rel=1e-3)]  # slippage 2 bps
        # the trade itself names the stop level (the violation's threshold) it acted on
        assert fills[0].detail.startswith(f"stop-loss {v.threshold:g}: "), fills[0].detail
        assert v.strategy is not None and v.instrument is not None and "stop-loss" in v.message
        cooloff = STOPS[v.strategy.name]
        n = cooloff.get("cooloff_bars", 0) if isinstance(cooloff, dict) else 0
        i = dates.index(v.date)
        if i + n >= len(dates):
            assert v.status == "open"
            continue
        assert v.resolved_on == dates[i + n]
        # no signal fill of that ticker during the cool-off (the bars after the stop's)
        blocked = dates[i + 1 : i + n + 1]
        assert not Trade.objects.filter(
            strategy=v.strategy, instrument=v.instrument, date__in=blocked, reason="signal"
        ).exists()
    assert AlertDelivery.objects.filter(violation__in=stops).count() == stops.count()
    # re-running the same bars creates nothing
    before = tables_digest(portfolio_tables(portfolio))
    portfolio_apply(portfolio=portfolio, closes=bars, chunk_dates=50)
    assert tables_digest(portfolio_tables(portfolio)) == before


@pytest.mark.django_db
def test_stop_violations_show_on_the_pages_the_export_and_the_api(bars, logged_in, user):
    user.is_staff = user.is_superuser = True
    user.save()
    portfolio = _configure()
    portfolio_apply(portfolio=portfolio, closes=bars, chunk_dates=10**6)
    v = Violation.objects.filter(limit__name=STOP_LIMIT).select_related("instrument").first()
    assert v is not None
    risk_page = logged_in.get("/risk/")
    assert risk_page.status_code == 200 and STOP_LIMIT in risk_page.content.decode()
    export = logged_in.get("/export/violations.csv")
    assert export.status_code == 200 and STOP_LIMIT in export.content.decode()
    api = logged_in.get("/api/violations/", {"limit": STOP_LIMIT})
    assert api.status_code == 200 and v.instrument.ticker in api.content.decode()
    for url in ("/", "/config/", "/strategy/trend_following_50/", "/admin/risk/violation/"):
        assert logged_in.get(url).status_code == 200, url
