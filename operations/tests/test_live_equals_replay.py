"""Live equals replay: the same bars under the same configuration leave bit-identical rows
whichever way they arrive (DESIGN.md "One update path").

Paths, each from an empty book: one replay in one commit; replays committed every 1, 7 and
500 dates; bar by bar, one ``run_update --as-of D`` per date (a fresh state load per bar,
as the scheduler does it); a replay split into two ``run_update`` calls; and a run killed
in its third chunk and resumed. The demo's strategies with ``config/risk_limits.yaml``
(limits firing: strategy drawdown pauses, a correlation pause, strategy leverage reduces,
concentration alerts) and an alert channel, under the static, inverse_volatility (lookback
20, shorter than the risk window), risk_parity and performance allocations. Every table
is compared through ``operations.digest`` (floats by their bits), which has a negative
control: a one-cent change to one fill is detected.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command

from operations.digest import portfolio_tables, stored_fields, tables_diff, tables_digest
from operations.tests.replay_setup import (
    END,
    METHODS,
    killed_then_resumed,
    replay_configure,
    replay_tables,
)
from operations.update import portfolio_apply, run_update
from portfolio import selectors
from portfolio.feeds import BundledProvider
from portfolio.models import ConfigChange, PortfolioSnapshot, Trade
from portfolio.services.books import pending_dates
from portfolio.services.prices import prices_load
from risk.models import AlertDelivery, Violation

SPLIT = date(1990, 11, 15)


@pytest.fixture
def bars(db, settings):
    settings.QUANTSITE_ALERT_MAX_AGE_DAYS = 100_000  # alert every violation on every path
    prices_load(provider=BundledProvider(), strict=True, until=END)
    return selectors.price_frame(end=END)


_configure = replay_configure


_path_tables = replay_tables


def _bar_by_bar(closes):
    def apply(portfolio):
        tradable = selectors.tradable_tickers()
        for d in pending_dates(portfolio, closes, tradable, END):
            assert run_update(as_of=d, load_prices=False).dates_applied == 1

    return apply


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("method", list(METHODS))
def test_every_path_of_the_bars_leaves_the_same_rows(method, bars, monkeypatch):
    replay = _path_tables(
        method,
        lambda p: portfolio_apply(portfolio=p, closes=bars, as_of=END, chunk_dates=10**6),
    )
    # the configuration is exercised: the risk manager measured, acted and alerted
    assert {row[0] for row in replay["violation"]} >= {
        "strategy_max_drawdown",
        "max_strategy_correlation",
        "max_concentration_top5",
    }
    assert any(r[7] == "pause_strategy" for r in replay["violation"])  # action_taken
    assert any(r[7] == "reduce_positions" for r in replay["violation"]) or method != "static"
    assert replay["alert"] and replay["audit_risk"]
    assert any(r[0] == "pager" and r[5] == "resolve" for r in replay["alert"])  # recoveries
    # the risk manager measured every bar after the warm-up (the row is date + fields)
    fields = ["date", *stored_fields(PortfolioSnapshot)]
    measured = [fields.index(f) for f in ("volatility", "var_95", "cvar_99")]
    assert all(r[i] is not None for r in replay["portfolio_snapshot"][70:] for i in measured)
    paths = {
        "chunks of 1": lambda p: portfolio_apply(portfolio=p, closes=bars, chunk_dates=1),
        "chunks of 7": lambda p: portfolio_apply(portfolio=p, closes=bars, chunk_dates=7),
        "chunks of 500": lambda p: portfolio_apply(portfolio=p, closes=bars, chunk_dates=500),
        "split run_update": lambda p: (
            call_command("run_update", as_of=SPLIT.isoformat(), no_prices=True, verbosity=0),
            call_command("run_update", as_of=END.isoformat(), no_prices=True, verbosity=0),
        ),
        "bar by bar": _bar_by_bar(bars),
        "killed and resumed": killed_then_resumed(bars, monkeypatch, chunk_dates=50),
    }
    expected = tables_digest(replay)
    for name, apply in paths.items():
        tables = _path_tables(method, apply)
        assert tables_digest(tables) == expected, (name, tables_diff(replay, tables))


@pytest.mark.django_db
def test_the_digest_detects_a_one_cent_change_to_one_fill(bars):
    portfolio = _configure("static")
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=date(1990, 8, 31))
    before = portfolio_tables(portfolio)
    assert before["trade"] and before["violation"] and before["risk_book"]
    assert AlertDelivery.objects.filter(violation__portfolio=portfolio).exists()
    trade = Trade.objects.filter(strategy__portfolio=portfolio).order_by("date", "id")[7]
    Trade.objects.filter(pk=trade.pk).update(value=trade.value + 0.01)
    after = portfolio_tables(portfolio)
    assert tables_digest(after) != tables_digest(before)
    [(table, old, new)] = tables_diff(before, after)
    assert table == "trade" and old[:3] == new[:3] and old != new
    # and a change in the risk manager's own state is seen as well
    Trade.objects.filter(pk=trade.pk).update(value=trade.value)
    assert tables_digest(portfolio_tables(portfolio)) == tables_digest(before)
    Violation.objects.filter(portfolio=portfolio).update(value=0.5)
    assert tables_digest(portfolio_tables(portfolio)) != tables_digest(before)


@pytest.mark.django_db
def test_a_pause_and_its_resume_inside_one_commit_both_leave_an_audit_row(bars):
    portfolio = _configure("static")
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=date(1990, 8, 31), chunk_dates=10**6)
    paused = Violation.objects.filter(
        portfolio=portfolio, action_taken="pause_strategy", strategy__isnull=False
    ).exclude(resolved_on=None)
    assert paused.count() >= 3  # strategy drawdown pauses that resolved within the chunk
    rows = set(
        ConfigChange.objects.filter(portfolio=portfolio, source="risk").values_list(
            "object_repr", "after", "bar_date"
        )
    )
    for v in paused:
        assert (v.strategy.name, "paused", v.date) in rows
        assert (v.strategy.name, "active", v.resolved_on) in rows
