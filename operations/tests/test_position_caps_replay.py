"""``reduce_position`` through the update path: the demo with ``violation_actions.low:
reduce_position`` (ticker-weight breaches cut that ticker and cap it) leaves the same rows
whichever way the bars arrive, and re-running the same bars creates nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from operations.config import portfolio_configure
from operations.digest import portfolio_tables, tables_diff, tables_digest
from operations.tests.replay_setup import configured_tables, killed_then_resumed
from operations.update import portfolio_apply
from portfolio import selectors
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.feeds import BundledProvider
from portfolio.models import ConfigChange, Trade
from portfolio.services.prices import prices_load
from risk.engine.limits_config import parse_risk_config
from risk.models import Violation

ROOT = Path(__file__).resolve().parents[2]
END = date(1990, 12, 31)


@pytest.fixture
def bars(db):
    prices_load(provider=BundledProvider(), strict=True, until=END)
    return selectors.price_frame(end=END)


def _configure():
    data = yaml.safe_load((ROOT / "config" / "strategy_allocation.yaml").read_text())
    spec = parse_allocation_config(data, source="demo")
    raw = yaml.safe_load((ROOT / "config" / "risk_limits.yaml").read_text())
    raw["portfolio_limits"]["violation_actions"]["low"] = "reduce_position"
    raw["portfolio_limits"]["position_limits"]["max_weight_per_ticker"] = 0.07
    risk = parse_risk_config(raw, source="risk_limits.yaml (low: reduce_position)")
    return portfolio_configure(spec=spec, risk=risk, source="position caps")


@pytest.mark.slow
@pytest.mark.django_db
def test_capped_tickers_leave_the_same_rows_on_every_path_and_a_rerun_adds_nothing(
    bars, monkeypatch
):
    portfolio = _configure()
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=END, chunk_dates=10**6)
    capped = Violation.objects.filter(limit__name="max_weight_per_ticker")
    # the configuration is exercised: tickers were cut (risk_action trades) and some cap
    # held over several bars before its violation resolved
    assert capped.count() >= 5 and {v.action_taken for v in capped} == {"reduce_position"}
    assert any(v.resolved_on and (v.resolved_on - v.date).days > 7 for v in capped)
    assert Trade.objects.filter(reason="risk_action").exists()
    # one violation per breach: never two open for one ticker
    open_targets = [v.instrument_id for v in capped.filter(status="open")]
    assert len(open_targets) == len(set(open_targets))
    replay = portfolio_tables(portfolio)
    # re-running the same bars creates nothing
    assert portfolio_apply(portfolio=portfolio, closes=bars, as_of=END).dates_applied == 0
    assert tables_digest(portfolio_tables(portfolio)) == tables_digest(replay)
    portfolio.delete()
    ConfigChange.objects.all().delete()
    paths = {
        "chunks of 1": lambda p: portfolio_apply(portfolio=p, closes=bars, chunk_dates=1),
        "chunks of 7": lambda p: portfolio_apply(portfolio=p, closes=bars, chunk_dates=7),
        "killed and resumed": killed_then_resumed(bars, monkeypatch, chunk_dates=40, end=END),
    }
    expected = tables_digest(replay)
    for name, apply in paths.items():
        tables = configured_tables(_configure, apply, end=END)
        assert tables_digest(tables) == expected, (name, tables_diff(replay, tables))
