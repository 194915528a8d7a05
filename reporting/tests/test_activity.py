"""The overview's Recent activity: bar-dated, for the shown portfolio, every source with
its cause (issue 10, point 9)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import ConfigChange, PortfolioSnapshot, Strategy, Trade
from portfolio.services.config import allocation_spec_read
from portfolio.services.controls import Origin
from portfolio.services.rebalance import rebalance_request
from reporting.pages.activity import ACTIVITY_ITEMS, activity_items
from risk.models import RiskLimit, Violation

DEMO = Path(__file__).resolve().parents[2] / "config" / "strategy_allocation.yaml"
pytestmark = pytest.mark.django_db


def _live(as_of: date):
    portfolio = portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    run_update(as_of=as_of, load_prices=False)
    portfolio.refresh_from_db()
    return portfolio


def _operator_pause(portfolio, name: str, actor: str) -> ConfigChange:
    """What an operator control records (the controls helper's surfaces do the same)."""
    Strategy.objects.filter(portfolio=portfolio, name=name).update(status="paused")
    return ConfigChange.objects.create(
        portfolio=portfolio,
        actor=actor,
        source="page",
        object_type="Strategy",
        object_repr=name,
        field="status",
        before="active",
        after="paused",
        applies_after=portfolio.last_applied_date,
    )


def test_an_operator_pause_and_a_manual_rebalance_are_dated_by_the_bar_they_took_effect():
    portfolio = _live(date(1990, 3, 30))
    _operator_pause(portfolio, "momentum_60", "alice")
    rebalance_request(portfolio=portfolio, origin=Origin(actor="bob", source="page"))
    pending = activity_items(portfolio=portfolio)[0]
    # no bar since the change: it is listed first, to take effect at the next bar
    assert pending["date"] is None and pending["kind_key"] == "status"
    assert "takes effect at the next bar" in pending["text"]
    assert pending["cause"] == "alice (page)" and pending["at"] is not None

    run_update(as_of=date(1990, 4, 6), load_prices=False)
    next_bar = (
        PortfolioSnapshot.objects.filter(portfolio=portfolio, date__gt=date(1990, 3, 30))
        .order_by("date")
        .values_list("date", flat=True)
        .first()
    )
    items = activity_items(portfolio=portfolio)
    status = next(i for i in items if i["kind_key"] == "status")
    assert status["date"] == next_bar
    assert status["text"] == "momentum_60: active -> paused"
    manual = next(i for i in items if i["kind_key"] == "rebalance" and "Manual" in i["text"])
    assert manual["date"] == next_bar and manual["cause"] == "requested by bob (page)"
    # newest bar first, bounded
    dated = [i["date"] for i in items]
    assert dated == sorted(dated, reverse=True) and len(items) == ACTIVITY_ITEMS
    # the paused book trades no more after its pause took effect
    assert not Trade.objects.filter(strategy__name="momentum_60", date__gt=next_bar).exists()
    assert not any(i["strategy"] == "momentum_60" and i["date"] > next_bar for i in items)


def test_trades_are_summed_per_bar_strategy_and_reason():
    portfolio = _live(date(1990, 2, 28))
    items = [i for i in activity_items(portfolio=portfolio) if i["kind_key"] == "trades"]
    first = items[0]
    fills = Trade.objects.filter(
        strategy__name=first["strategy"], date=first["date"], reason=first["cause"]
    )
    assert first["kind"] == f"{fills.count()} fill{'s' * (fills.count() > 1)}"
    bought = sum(t.value for t in fills if t.side == "buy")
    if bought:
        assert f"{bought:,.0f}" in first["text"]
    assert first["cause"] in {r.label.lower() for r in Trade.Reason}


def test_violations_show_when_opened_and_when_resolved_with_the_risk_manager_as_cause():
    portfolio = _live(date(1990, 2, 28))
    limit = RiskLimit.objects.create(
        portfolio=portfolio,
        name="gross",
        scope="portfolio",
        metric="leverage",
        direction="max",
        threshold=1.0,
        severity="high",
        action="alert",
    )
    old = date(1980, 1, 2)
    kept = dict(portfolio=portfolio, limit=limit, severity="high", value=2, threshold=1)
    Violation.objects.create(**kept, date=old, action_taken="alert", resolved_on=date(1990, 2, 28))
    Violation.objects.create(**kept, date=old, action_taken="alert")  # old, still open
    items = activity_items(portfolio=portfolio)
    resolved = next(i for i in items if i["kind_key"] == "resolved")
    assert resolved["date"] == date(1990, 2, 28) and resolved["good"] is True
    assert "breached 1980-01-02" in resolved["text"]
    assert resolved["cause"].startswith("risk manager")
    # an old breach resolved recently is listed at its resolution; its opening at 1980
    opened = [i for i in items if i["kind_key"] == "violation"]
    assert [i["date"] for i in opened] == [old, old] and items[-2:] == opened


def test_the_feed_follows_the_shown_portfolio(logged_in):
    live = _live(date(1990, 2, 28))
    other = portfolio_configure(
        spec=allocation_spec_read(DEMO), source="test", is_backtest=True, name="bt"
    )
    _operator_pause(other, "momentum_60", "carol")
    assert "carol" not in logged_in.get("/").content.decode()
    html = logged_in.get(f"/?portfolio={other.pk}").content.decode()
    assert "carol (page)" in html and "next bar" in html
    html = logged_in.get(f"/?portfolio={live.pk}").content.decode()
    i = html.find("carol")
    assert i < 0, html[i - 300 : i + 100]
    assert html.count('<li data-kind="') == 17  # every event of two months


def test_a_status_change_recorded_without_applies_after_is_dated_after_the_last_run():
    portfolio = _live(date(1990, 3, 30))
    change = _operator_pause(portfolio, "momentum_120", "dave")
    ConfigChange.objects.filter(pk=change.pk).update(applies_after=None)  # an older surface
    run_update(as_of=date(1990, 4, 6), load_prices=False)
    first_after = (
        PortfolioSnapshot.objects.filter(portfolio=portfolio, date__gt=date(1990, 3, 30))
        .order_by("date")
        .values_list("date", flat=True)
        .first()
    )
    status = next(i for i in activity_items(portfolio=portfolio) if i["kind_key"] == "status")
    assert status["date"] == first_after and status["cause"] == "dave (page)"
