"""Rebalancing (engine): triggers, the three ways capital moves, and conservation."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from portfolio.engine.book import Book, Execution, Holding
from portfolio.engine.calendar import bar_numbers
from portfolio.engine.cycle import ManualRequest, PortfolioState, StrategyState, apply_dates
from portfolio.engine.rebalance import drift, move_capital, trigger_due
from portfolio.engine.state import DayContext

D0, D1 = date(2024, 3, 1), date(2024, 3, 4)
MARKS = {"A": 10.0, "B": 20.0}


def _two_books(execution="cash") -> PortfolioState:
    ex = Execution()
    # s1: 30 A (300) + 100 cash = 400; s2: 20 B (400) + 200 cash = 600. Total 1000, 50/50.
    s1 = StrategyState("s1", 0.5, True, "daily", ex, Book(100.0, {"A": Holding(30, 10.0, D0)}))
    s2 = StrategyState("s2", 0.5, True, "daily", ex, Book(200.0, {"B": Holding(20, 20.0, D0)}))
    return PortfolioState(1000.0, 1.0, [s1, s2], rebalance_execution=execution)


def _ctx() -> DayContext:
    return DayContext(D1, dict(MARKS), dict(MARKS), {"s1": 0.0, "s2": 0.0})


def test_cash_method_moves_only_cash_when_the_giver_has_enough():
    state, ctx = _two_books(), _ctx()
    record = move_capital(state, ctx, "manual", "cash")
    # s2 gives 100 of its 200 cash; no trade
    assert record.capital_moved == pytest.approx(100.0) and ctx.fills == []
    assert [s.book.cash for s in state.strategies] == [200.0, 100.0]
    assert ctx.flows == {"s1": 100.0, "s2": -100.0}


def test_proportional_method_scales_every_position_by_the_capital_ratio():
    state, ctx = _two_books(), _ctx()
    move_capital(state, ctx, "manual", "proportional")
    s1, s2 = (s.book for s in state.strategies)
    # s2: 600 -> 500 sells 1/6 of its B (20 -> 16.667) and hands over 100;
    # s1: 400 -> 500 buys 1/4 more A (30 -> 37.5) with the 100 it receives.
    assert_allclose([s1.holdings["A"].quantity, s2.holdings["B"].quantity], [37.5, 50 / 3])
    assert_allclose([s1.cash, s2.cash], [100.0 + 100 - 75, 200 + 400 / 6 - 100])
    assert_allclose([s1.equity(MARKS), s2.equity(MARKS)], [500.0, 500.0])
    # the cash/positions mix of each book is unchanged: s1 75% A, s2 2/3 B
    assert_allclose(375 / 500, 300 / 400) and assert_allclose(50 / 3 * 20 / 500, 400 / 600)


def test_liquidate_method_closes_everything_and_buys_back_the_same_mix():
    state, ctx = _two_books(), _ctx()
    record = move_capital(state, ctx, "manual", "liquidate")
    s1, s2 = (s.book for s in state.strategies)
    # 2 closing sells, then 2 buys back: s1 75% A of 500 = 37.5 A; s2 2/3 B of 500 = 16.67 B
    assert record.trades_count == 4
    assert [f.reason for _, f in ctx.fills] == ["rebalance"] * 4
    assert_allclose([s1.holdings["A"].quantity, s2.holdings["B"].quantity], [37.5, 50 / 3])
    assert_allclose([s1.equity(MARKS), s2.equity(MARKS)], [500.0, 500.0])


def test_drift_is_measured_against_the_active_books_target_shares():
    state = _two_books()
    assert drift(state, MARKS) == pytest.approx(0.1)  # 40/60 against 50/50
    state.strategies[0].allocation = 0.4
    state.strategies[1].allocation = 0.6
    assert drift(state, MARKS) == pytest.approx(0.0, abs=1e-15)


def test_triggers_fire_on_the_nth_bar_on_drift_and_after_a_manual_request():
    state = _two_books()
    state.rebalance_trading_day = 2
    state.last_date = D0
    assert trigger_due(state, _ctx(), bar_number=1) is None
    assert trigger_due(state, _ctx(), bar_number=2) == "periodic"
    state.rebalance_trigger, state.rebalance_threshold = "threshold", 0.099
    assert trigger_due(state, _ctx(), 1) == "threshold"
    state.rebalance_threshold = 0.101
    assert trigger_due(state, _ctx(), 1) is None
    state.manual = ManualRequest(("k1",), after_date=D1)  # made after the D1 bar was seen
    assert trigger_due(state, _ctx(), 1) is None
    state.manual = ManualRequest(("k1",), after_date=D0)
    assert trigger_due(state, _ctx(), 1) == "manual"


def test_bar_numbers_count_bars_within_each_period():
    days = [date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1), date(2024, 2, 2)]
    assert bar_numbers(days, "monthly") == [1, 2, 1, 2]
    assert bar_numbers(days, "quarterly") == [1, 2, 3, 4]
    assert bar_numbers(days, "daily") == [1, 1, 1, 1]


def test_a_manual_request_rebalances_once_at_the_next_bar_with_its_method():
    days = [date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1)]
    closes = pd.DataFrame({"A": [10.0, 11.0, 12.0]}, index=pd.to_datetime(days))
    state = PortfolioState(
        1000.0,
        1.0,
        [
            StrategyState("s1", 0.5, True, "daily", Execution(), Book()),
            StrategyState("s2", 0.5, True, "daily", Execution(), Book()),
        ],
        rebalance_trigger="manual",
    )
    targets = {
        "s1": pd.DataFrame({"A": 1.0}, index=closes.index),
        "s2": pd.DataFrame({"A": 0.0}, index=closes.index),
    }
    apply_dates(state, closes, targets, days[:2])
    state.manual = ManualRequest(("k1", "k2"), after_date=days[1], execution="proportional")
    result = apply_dates(state, closes, targets, days[2:])[0]
    (rb,) = result.rebalances
    assert (rb.trigger, rb.method, rb.request_keys) == ("manual", "proportional", ("k1", "k2"))
    assert state.manual is None
    # s1 held 500/11 A bought at 11 -> 545.45 at 12; s2 500 cash. Total 1045.45, 522.73 each
    assert_allclose([s.equity for s in result.strategies], [1045.4545454545 / 2] * 2)


@settings(max_examples=120, deadline=None)
@given(
    qty=st.lists(st.floats(-500, 1e3), min_size=6, max_size=6),
    cash=st.lists(st.floats(0, 1e4), min_size=3, max_size=3),
    alloc=st.lists(st.floats(0.01, 1), min_size=3, max_size=3),
    bps=st.floats(0, 30),
    method=st.sampled_from(["cash", "proportional", "liquidate"]),
    whole=st.booleans(),
)
def test_every_rebalance_method_changes_total_value_only_by_its_costs(
    qty, cash, alloc, bps, method, whole
):
    marks = {"A": 12.0, "B": 40.0}
    ex = Execution(commission_bps=bps, slippage_bps=bps, whole_shares=whole)
    books = []
    for i in range(3):
        holdings = {
            t: Holding(q, 1.0, D0) for t, q in zip("AB", qty[2 * i : 2 * i + 2]) if abs(q) > 1e-3
        }
        books.append(Book(cash=cash[i], holdings=holdings))
    state = PortfolioState(
        1.0,
        1.0,
        [StrategyState(f"s{i}", alloc[i], True, "daily", ex, b) for i, b in enumerate(books)],
    )
    before = sum(b.equity(marks) for b in books)
    ctx = DayContext(D1, dict(marks), dict(marks), {f"s{i}": 0.0 for i in range(3)})
    record = move_capital(state, ctx, "manual", method)
    after = sum(b.equity(marks) for b in books)
    assert record.cost == pytest.approx(sum(f.cost for _, f in ctx.fills))
    assert_allclose(after, before - record.cost, rtol=1e-9, atol=1e-7)
    assert_allclose(sum(ctx.flows.values()), 0.0, atol=1e-7)  # cash only moves between books
    if bps == 0 and not whole and before > 1e-6 and all(b.equity(marks) > 0 for b in books):
        shares = np.array(alloc) / sum(alloc)
        assert_allclose([b.equity(marks) / after for b in books], shares, atol=1e-9)
