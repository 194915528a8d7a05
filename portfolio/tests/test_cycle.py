"""The daily cycle: funding, next-bar fills, monthly cash rebalance, flows, aggregation."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from numpy.testing import assert_allclose

from portfolio.engine.book import Book, Execution, Holding
from portfolio.engine.cycle import PortfolioState, StrategyState, apply_dates

DATES = [date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1), date(2024, 2, 2)]
CLOSES = pd.DataFrame(
    {"A": [10.0, 11.0, 11.0, 12.0], "B": [20.0, 20.0, 22.0, 22.0]},
    index=pd.to_datetime(DATES),
)


def _state(frequency="daily", trigger="periodic", active=(True, True)) -> PortfolioState:
    return PortfolioState(
        initial_capital=1000.0,
        leverage_target=1.0,
        rebalance_trigger=trigger,
        rebalance_frequency="monthly",
        strategies=[
            StrategyState("s1", 0.5, active[0], frequency, Execution(), Book()),
            StrategyState("s2", 0.5, active[1], frequency, Execution(), Book()),
        ],
    )


def _targets():
    return {
        "s1": pd.DataFrame({"A": 1.0, "B": 0.0}, index=CLOSES.index),
        "s2": pd.DataFrame({"A": 0.0, "B": 1.0}, index=CLOSES.index),
    }


def test_two_books_fund_fill_next_bar_and_rebalance_monthly_by_hand():
    state = _state()
    days = apply_dates(state, CLOSES, _targets(), DATES)
    # d0: each book funded with 500; nothing decided yet, so nothing trades.
    assert days[0].fills == [] and days[0].rebalance.trigger == "initial"
    # d1: targets decided at d0 fill at the d1 close: 500/11 A, 500/20 B.
    assert {(n, f.ticker): f.quantity for n, f in days[1].fills} == pytest.approx(
        {("s1", "A"): 500 / 11, ("s2", "B"): 25.0}
    )
    # d2 (first bar of February): marked s1 500, s2 25*22 = 550 -> total 1050, 525 each.
    # s2 has no cash: it sells 25/550 of its B and hands 25 to s1.
    rb = days[2].rebalance
    assert rb.trigger == "periodic" and rb.capital_moved == pytest.approx(25.0)
    assert_allclose([rb.weights_before["s1"], rb.weights_after["s1"]], [500 / 1050, 0.5])
    assert_allclose([d.equity for d in days[2].strategies], [525.0, 525.0])
    # then s1 buys A with its 525 (a daily strategy trades every bar)
    assert state.strategies[0].book.holdings["A"].quantity == pytest.approx(525 / 11)
    # d3: A 11 -> 12: s1 = 525/11*12
    assert_allclose([d.equity for d in days[3].strategies], [525 / 11 * 12, 525.0])
    assert_allclose(days[3].portfolio.equity, 525 / 11 * 12 + 525.0)


def test_strategy_returns_exclude_the_cash_moved_by_a_rebalance():
    days = apply_dates(_state(), CLOSES, _targets(), DATES)
    s1 = [d.strategies[0].daily_return for d in days]
    s2 = [d.strategies[1].daily_return for d in days]
    # s2 made 10% on d2 (B 20 -> 22) even though it handed 25 to s1; s1 made 0 that day.
    assert_allclose(s1, [0.0, 0.0, 0.0, 12 / 11 - 1], atol=1e-15)
    assert_allclose(s2, [0.0, 0.0, 0.1, 0.0], atol=1e-15)
    # portfolio return is plain: 1050/1000 - 1 on d2
    assert_allclose(
        [d.portfolio.daily_return for d in days], [0.0, 0.0, 0.05, (525 / 11 * 12 + 525) / 1050 - 1]
    )


def test_portfolio_equity_is_the_sum_of_the_books_every_day():
    for d in apply_dates(_state(), CLOSES, _targets(), DATES):
        assert d.portfolio.equity == pytest.approx(sum(s.equity for s in d.strategies), rel=1e-15)


def test_a_monthly_strategy_fills_only_on_the_first_bar_of_a_month():
    state = _state(frequency="monthly")
    days = apply_dates(state, CLOSES, _targets(), DATES)
    assert [len(d.fills) for d in days] == [0, 0, 2, 0]
    # it fills at the d2 close the targets decided at d1 (the last January bar)
    assert days[2].fills[0][1].date == DATES[2]


def test_a_paused_book_keeps_its_positions_marked_and_its_capital():
    state = _state(active=(True, False))
    days = apply_dates(state, CLOSES, _targets(), DATES)
    assert all(n == "s1" for d in days for n, _ in d.fills)
    assert [d.strategies[1].equity for d in days] == [500.0] * 4  # cash only, never traded
    assert days[2].rebalance.capital_moved == 0.0  # only active books share capital


def test_drawdown_is_measured_from_the_running_peak():
    closes = CLOSES.copy()
    closes["A"] = [10.0, 10.0, 8.0, 9.0]
    days = apply_dates(_state(trigger="manual"), closes, _targets(), DATES)
    # s1 holds 50 A from d1: 500 -> 400 -> 450
    assert_allclose([d.strategies[0].drawdown for d in days], [0, 0, -0.2, -0.1], atol=1e-15)


def test_netting_counts_gross_and_net_positions_across_books():
    targets = {
        "s1": pd.DataFrame({"A": 0.5, "B": 0.0}, index=CLOSES.index),
        "s2": pd.DataFrame({"A": -0.25, "B": 0.5}, index=CLOSES.index),
    }
    day = apply_dates(_state(trigger="manual"), CLOSES, targets, DATES[:2])[1]
    p = day.portfolio
    # s1 long 250/11 A, s2 short 125/11 A and long 250/20 B: net A = +125 of value
    assert (p.positions_gross, p.positions_net) == (3, 2)
    assert_allclose(
        [p.long_exposure, p.short_exposure, p.gross_exposure], [125.0 + 250.0, 0.0, 375.0]
    )


def test_books_that_offset_to_a_rounding_residue_net_to_flat():
    # Found by the invariants state machine: a long and a short of the same size in two
    # books left a net of 1.5e-11 units, counted as a netted position (the risk manager's
    # netting already called it flat).
    q = 40663.748145749974
    state = _state(trigger="manual")
    state.strategies[0].book = Book(0.0, {"A": Holding(q, 10.0, DATES[0])})
    state.strategies[1].book = Book(2 * q * 10.0, {"A": Holding(-(q + 1.5e-11), 10.0, DATES[0])})
    state.last_date = DATES[0]
    p = apply_dates(state, CLOSES, {}, DATES[1:2])[0].portfolio
    assert (p.positions_gross, p.positions_net) == (2, 0)
    assert p.gross_exposure == 0.0 and p.net_exposure == 0.0


def test_an_already_applied_date_is_refused():
    state = _state()
    apply_dates(state, CLOSES, _targets(), DATES[:2])
    with pytest.raises(ValueError, match="not after the last applied date"):
        apply_dates(state, CLOSES, _targets(), DATES[1:2])


def _paused_short_book(risk_scale: float) -> PortfolioState:
    """One paused book that stayed short while the risk manager cut its multiplier: equity
    1000 (cash 2500, short 150 X at 10), gross leverage 1.5, multiplier ``risk_scale``."""
    book = Book(2500.0, {"X": Holding(-150.0, 10.0, DATES[0])})
    s = StrategyState("p", 1.0, False, "daily", Execution(), book, risk_scale=risk_scale)
    s.last_equity = 1000.0
    state = PortfolioState(1000.0, 1.0, [s], rebalance_trigger="manual")
    state.last_date, state.last_equity, state.peak_equity = DATES[0], 1000.0, 1000.0
    return state


def test_a_paused_books_unit_return_is_per_unit_of_the_gross_it_held_not_its_multiplier():
    closes = pd.DataFrame({"X": [10.0, 9.6]}, index=pd.to_datetime(DATES[:2]))
    state = _paused_short_book(risk_scale=0.01)
    day = apply_dates(state, closes, {}, DATES[1:2])[0].strategies[0]
    # X 10 -> 9.6: the short gains 150 * 0.4 = 60 on equity 1000, r = 6%. The book held
    # gross 1500 = 1.5x its equity, far more than its multiplier 0.01 says: the unit return
    # is r / max(0.01, 1.5) = 60 / 1500 = 4%, not r / 0.01 = 600% a day.
    assert_allclose([day.daily_return, day.unit_return], [0.06, 0.04], rtol=1e-12)
    assert_allclose(state.returns_window(), [[0.04]], rtol=1e-12)


def test_a_paused_book_inside_its_multiplier_keeps_return_over_multiplier():
    closes = pd.DataFrame({"X": [10.0, 9.6]}, index=pd.to_datetime(DATES[:2]))
    state = _paused_short_book(risk_scale=2.0)
    day = apply_dates(state, closes, {}, DATES[1:2])[0].strategies[0]
    # gross leverage 1.5 < multiplier 2: r / 2 = 3%, the usual convention
    assert_allclose(day.unit_return, 0.03, rtol=1e-12)


def test_a_flat_paused_book_with_no_multiplier_has_no_unit_return():
    closes = pd.DataFrame({"X": [10.0, 9.6]}, index=pd.to_datetime(DATES[:2]))
    state = _paused_short_book(risk_scale=0.0)
    state.strategies[0].book = Book(1000.0)
    day = apply_dates(state, closes, {}, DATES[1:2])[0].strategies[0]
    assert (day.daily_return, day.unit_return) == (0.0, 0.0)


def test_a_book_cut_to_a_zero_allocation_keeps_its_return_history():
    # s2 has 100 days of history and is cut to 0 by the allocation method: the days pass
    # with no return to learn from, but its history must not restart (it used to be reset
    # to 0, so min_history handed it its full static weight at the next rebalance).
    state = _state()
    apply_dates(state, CLOSES, _targets(), DATES[:1])  # funding
    s1, s2 = state.strategies
    s1.history_days, s2.history_days, s2.allocation = 100, 100, 0.0
    days = apply_dates(state, CLOSES, _targets(), DATES[1:])
    assert [d.strategies[1].allocation for d in days] == [0.0, 0.0, 0.0]
    assert s2.history_days == 100  # the old code restarted it at 0
    assert s1.history_days == 103  # a funded book counts every bar once it has history
