"""The risk manager's step (engine): netting, each action with its computed size, one
violation per breach, recovery after a cooldown and staged re-entry. Numbers by hand."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from portfolio.engine.book import Book, Execution, Holding
from portfolio.engine.cycle import PortfolioState, StrategyState, apply_dates
from portfolio.engine.state import DayContext
from risk.engine.manager import LimitRule, RiskState, risk_step
from risk.engine.measures import BookView, measure

NO_RETURNS = np.zeros((0, 0))  # no return history yet: the return measures are NaN

D0 = date(2024, 3, 1)
FREE = Execution()


def _state(a: Book, b: Book) -> PortfolioState:
    return PortfolioState(
        2000.0,
        1.0,
        [
            StrategyState("A", 0.5, True, "daily", FREE, a, pending={}),
            StrategyState("B", 0.5, True, "daily", FREE, b, pending={}),
        ],
    )


def _ctx(marks: dict[str, float], day: date = D0) -> DayContext:
    return DayContext(day, dict(marks), dict(marks), {"A": 0.0, "B": 0.0})


def rule(**kw) -> LimitRule:
    base = dict(
        id=1,
        name="limit",
        scope="portfolio",
        metric="leverage",
        direction="max",
        threshold=1.0,
        severity="high",
        action="reduce_positions",
    )
    return LimitRule(**(base | kw))


def test_netting_long_10_and_short_5_is_net_long_5_gross_15():
    # A long 10 X at 100 (cash 0: equity 1000); B short 5 X (cash 1500: equity 1000).
    books = [
        BookView("A", True, 1000.0, {"X": 10.0}, 1.0, 1.0, 1.0),
        BookView("B", True, 1000.0, {"X": -5.0}, 1.0, 1.0, 1.0),
    ]
    m = measure(books, {"X": 100.0}, {}, np.zeros((0, 2)), risk_peak=2000.0)
    assert m.detail["net"] == {"X": 5.0}
    assert m.portfolio["leverage"] == pytest.approx(500 / 2000)  # net 5 x 100
    assert m.portfolio["gross_leverage"] == pytest.approx(1500 / 2000)  # 10 + 5, not netted
    assert m.tickers == {"X": pytest.approx(0.25)}  # concentration on the net position
    assert m.portfolio["positions_net"] == 1 and m.portfolio["positions_gross"] == 2


def test_a_ticker_weight_breach_cuts_the_net_side_to_the_limit_once():
    state = _state(
        Book(0.0, {"X": Holding(10, 100.0, D0)}), Book(1500.0, {"X": Holding(-5, 100.0, D0)})
    )
    risk = RiskState()
    limit = rule(scope="position", metric="ticker_weight", threshold=0.2)
    ctx = _ctx({"X": 100.0})
    m, events = risk_step(state, ctx, risk, [limit], {}, NO_RETURNS)
    # net 5 units = 25% of 2000; allowed 20% = 4 units: the long side (A's 10) sells 1.
    assert [(n, f.ticker, f.quantity, f.reason) for n, f in ctx.fills] == [
        ("A", "X", pytest.approx(-1.0), "risk_action")
    ]
    assert [(e.kind, e.target, e.value) for e in events] == [("opened", "X", 0.25)]
    assert m.tickers["X"] == pytest.approx(0.2)
    # the next bar it is at the limit, not beyond: the violation resolves, nothing trades
    ctx2 = _ctx({"X": 100.0}, D0 + timedelta(days=1))
    _, again = risk_step(state, ctx2, risk, [limit], {}, NO_RETURNS)
    assert [(e.kind, e.opened_on) for e in again] == [("resolved", D0)] and ctx2.fills == []
    ctx3 = _ctx({"X": 100.0}, D0 + timedelta(days=2))
    assert risk_step(state, ctx3, risk, [limit], {}, NO_RETURNS)[1] == [] and ctx3.fills == []


def test_a_leverage_breach_scales_every_book_by_threshold_over_value():
    # A: 20 X at 100 on 1000 cash -> equity 1000 + ..., leverage by hand:
    # A holds 15 X (1500) with cash -500: equity 1000; B holds 5 Y at 100 with cash 500.
    # Netted gross 2000 / equity 2000 = 1.0 leverage; limit 0.8 -> k = 0.8.
    state = _state(
        Book(-500.0, {"X": Holding(15, 100.0, D0)}), Book(500.0, {"Y": Holding(5, 100.0, D0)})
    )
    risk = RiskState()
    ctx = _ctx({"X": 100.0, "Y": 100.0})
    m, events = risk_step(state, ctx, risk, [rule(threshold=0.8)], {}, NO_RETURNS)
    assert events[0].message == "scaled every book by 0.8000"
    a, b = (s.book for s in state.strategies)
    assert_allclose([a.holdings["X"].quantity, b.holdings["Y"].quantity], [12.0, 4.0])
    assert m.portfolio["leverage"] == pytest.approx(0.8)
    assert state.risk_scale == pytest.approx(0.8)  # later fills are scaled too


def test_a_strategy_drawdown_pauses_it_and_it_resumes_in_steps_after_recovery():
    state = _state(Book(0.0, {"X": Holding(10, 100.0, D0)}), Book(1000.0, {}))
    a = state.strategies[0]
    a.pending = {"X": 1.0}
    limit = rule(
        scope="strategy",
        metric="drawdown",
        direction="min",
        threshold=-0.10,
        severity="medium",
        action="pause_strategy",
        cooldown_bars=2,
        recovery_steps=(0.5, 1.0),
    )
    risk = RiskState()
    a.nav, a.peak_nav = 0.88, 1.0  # -12% from its peak
    ctx = _ctx({"X": 88.0})
    _, events = risk_step(state, ctx, risk, [limit], {}, NO_RETURNS)
    assert [(e.kind, e.target, e.message) for e in events] == [("opened", "A", "paused A")]
    assert not a.active and ctx.fills == []  # paused: positions kept, no trade
    # Its drawdown is now measured from the pause (0.88). Next bar still -0; cooldown 2.
    day = D0
    for _ in range(2):
        day += timedelta(days=1)
        _, events = risk_step(state, _ctx({"X": 88.0}, day), risk, [limit], {}, NO_RETURNS)
    assert [e.kind for e in events] == ["resolved"] and a.active
    assert a.risk_scale == 0.5  # first step; it traded to half its target weight
    day += timedelta(days=1)
    ctx = _ctx({"X": 88.0}, day)
    risk_step(state, ctx, risk, [limit], {}, NO_RETURNS)
    assert a.risk_scale == 1.0 and "A" not in risk.strategy_ramps


def test_a_strategy_retired_while_the_risk_manager_pauses_it_is_never_resumed():
    state = _state(Book(0.0, {"X": Holding(10, 100.0, D0)}), Book(1000.0, {}))
    a = state.strategies[0]
    limit = rule(
        scope="strategy",
        metric="drawdown",
        direction="min",
        threshold=-0.10,
        severity="medium",
        action="pause_strategy",
        cooldown_bars=1,
        recovery_steps=(1.0,),
    )
    risk = RiskState()
    a.nav, a.peak_nav = 0.88, 1.0
    risk_step(state, _ctx({"X": 88.0}), risk, [limit], {}, NO_RETURNS)
    assert not a.active
    a.retired = True  # an operator retires it while the pause is open
    day = D0 + timedelta(days=1)
    ctx = _ctx({"X": 88.0}, day)
    _, events = risk_step(state, ctx, risk, [limit], {}, NO_RETURNS)
    assert [(e.kind, e.message) for e in events] == [("resolved", "A stays retired")]
    assert not a.active and ctx.fills == [] and "A" not in risk.paused_by


def test_a_strategy_an_operator_paused_is_not_resumed_when_its_own_breach_recovers():
    # Found by the invariants state machine (operations/tests/test_invariants_machine.py):
    # the breach became a cause of the pause, and its recovery resumed the strategy.
    state = _state(Book(0.0, {"X": Holding(10, 100.0, D0)}), Book(1000.0, {}))
    a = state.strategies[0]
    a.active, a.pending = False, {"X": 1.0}  # paused by an operator before the bar
    limit = rule(
        scope="strategy",
        metric="drawdown",
        direction="min",
        threshold=-0.10,
        severity="medium",
        action="pause_strategy",
        cooldown_bars=1,
        recovery_steps=(1.0,),
    )
    risk = RiskState()
    a.nav, a.peak_nav = 0.88, 1.0
    _, events = risk_step(state, _ctx({"X": 88.0}), risk, [limit], {}, NO_RETURNS)
    assert [e.message for e in events] == ["A already paused by an operator; left paused"]
    assert risk.paused_by == {}
    a.nav = 0.97  # back within the recovery threshold (half the limit) of its peak
    ctx = _ctx({"X": 97.0}, D0 + timedelta(days=1))
    _, events = risk_step(state, ctx, risk, [limit], {}, NO_RETURNS)
    assert [(e.kind, e.message) for e in events] == [("resolved", "resolved")]
    assert not a.active and ctx.fills == []


def test_strategy_ramps_advance_in_book_order_whatever_order_the_state_was_stored_in():
    # Found by the invariants state machine on PostgreSQL: jsonb does not keep key order,
    # so a run resumed from the stored risk state filled the ramps in another order.
    fills = []
    for ramps in ({"A": [1.0], "B": [1.0]}, {"B": [1.0], "A": [1.0]}):
        state = _state(Book(1000.0, {}), Book(1000.0, {}))
        for s in state.strategies:
            s.pending = {"X": 1.0}
        ctx = _ctx({"X": 100.0})
        risk_step(state, ctx, RiskState(strategy_ramps=ramps), [], {}, NO_RETURNS)
        fills.append([name for name, _ in ctx.fills])
    assert fills == [["A", "B"], ["A", "B"]]


def _path_state():
    return PortfolioState(
        10000.0,
        1.0,
        [
            StrategyState("A", 0.5, True, "daily", FREE, Book()),
            StrategyState("B", 0.5, True, "daily", FREE, Book()),
        ],
    )


def test_a_critical_drawdown_liquidates_blocks_and_re_enters_in_steps():
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(12)]
    x = [100, 100, 100, 90, 80, 80, 80, 80, 80, 80, 80, 80.0]
    closes = pd.DataFrame({"X": x, "Y": 100.0}, index=pd.to_datetime(days))
    targets = {
        "A": pd.DataFrame({"X": 1.0, "Y": 0.0}, index=closes.index),
        "B": pd.DataFrame({"X": 0.5, "Y": 0.5}, index=closes.index),
    }
    limit = rule(
        metric="drawdown",
        direction="min",
        threshold=-0.15,
        severity="critical",
        action="liquidate_all",
        cooldown_bars=3,
        recovery_steps=(0.25, 0.5, 1.0),
    )
    risk = RiskState()
    log = []

    def hook(state, ctx):
        _, events = risk_step(state, ctx, risk, [limit], {}, NO_RETURNS)
        log.append((ctx.day, state.risk_scale, [e.kind for e in events]))

    state = _path_state()
    results = apply_dates(state, closes, targets, days, risk_hook=hook)
    # Funded on day 0, invested at the day-1 close (A: 50 X; B: 25 X + 25 Y, re-weighted
    # daily). Day 3, X 90: 4500 + 4750 = 9250 (-7.5%). Day 4, X 80: A 4000, B 26.389 X +
    # 23.75 Y = 4486.1 -> 8486.1, -15.14% < -15%: breach at the day-4 close.
    assert [kinds for _, _, kinds in log[:4]] == [[], [], [], []]
    assert log[4][2] == ["opened"]
    assert_allclose(results[4].portfolio.equity, 4000 + 4750 / 90 * 0.5 * 80 + 23.75 * 100)
    # at that close every book is flat: the day's signal fills, then the liquidation
    liquidation = [(n, f.ticker) for n, f in results[4].fills if f.reason == "risk_action"]
    assert sorted(liquidation) == [("A", "X"), ("B", "X"), ("B", "Y")]
    assert [d.positions_count for d in results[4].strategies] == [0, 0]
    assert results[4].portfolio.gross_exposure == 0.0
    # blocked: days 5 and 6 trade nothing; day 7 (3 bars later) the violation resolves
    assert results[5].fills == [] and results[6].fills == []
    assert log[7][2] == ["resolved"]
    # re-entry: 25%, 50%, 100% of the targets on successive bars, trades as risk_action
    assert [log[k][1] for k in (7, 8, 9, 10)] == [0.25, 0.5, 1.0, 1.0]
    a = state.strategies[0]
    for k, frac in ((7, 0.25), (8, 0.5), (9, 1.0)):
        assert {f.reason for n, f in results[k].fills if n == "A"} == {"risk_action"}
        held = [d for d in results[k].strategies if d.name == "A"][0]
        assert_allclose(held.long_exposure / held.equity, frac, rtol=1e-12)
    assert a.book.holdings["X"].quantity * 80 == pytest.approx(a.book.equity({"X": 80.0}))


def test_a_paused_book_weighs_by_the_gross_it_holds_when_that_exceeds_its_multiplier():
    # P paused, equity 1000, short 150 X at 10 (gross 1500, leverage 1.5), multiplier 0.01;
    # A active, equity 1000, multiplier 1. Unit returns: P +4%, -4%; A 0, 0.
    books = [
        BookView("A", True, 1000.0, {}, 1.0, 1.0, 1.0),
        BookView("P", False, 1000.0, {"X": -150.0}, 1.0, 1.0, 0.01),
    ]
    u = np.array([[0.0, 0.04], [0.0, -0.04]])
    m = measure(books, {"X": 10.0}, {}, u, risk_peak=2000.0)
    # w_P = 1000/2000 * max(0.01, 1.5) = 0.75; sd(P) = 0.04*sqrt(2), so the portfolio's
    # daily vol is 0.75 * 0.0566 = 0.0424 (sqrt(252) a year); P's own: 1.5 * sd(P).
    assert m.detail["weights"] == pytest.approx([0.5, 0.75])
    assert_allclose(m.portfolio["volatility"], 0.75 * 0.04 * np.sqrt(2 * 252), rtol=1e-12)
    assert_allclose(m.strategies["P"]["volatility"], 1.5 * 0.04 * np.sqrt(2 * 252), rtol=1e-12)


def _three_books() -> PortfolioState:
    # each holds 10 X at 100 (not flat: a paused flat book's drawdown restarts every bar)
    books = [Book(0.0, {"X": Holding(10, 100.0, D0)}) for _ in range(3)]
    return PortfolioState(
        3000.0,
        1.0,
        [
            StrategyState(n, 1 / 3, True, "daily", FREE, b, pending={})
            for n, b in zip("ABC", books, strict=True)
        ],
    )


X100 = {"X": 100.0}
# A and B move together (correlation 1); C moves against them and has the lowest mean.
# Means: A 0.004, B 0.002, C -0.006; corr(A, B) = 1, corr(A, C) = corr(B, C) = -1.
PAIR_RETURNS = np.array([[0.01, 0.008, -0.012], [-0.002, -0.004, 0.0], [0.004, 0.002, -0.006]] * 4)
CORRELATION = dict(
    scope="portfolio", metric="strategy_correlation", threshold=0.8, severity="medium"
)


def test_a_correlation_breach_pauses_the_weaker_of_the_correlated_pair_not_the_weakest_book():
    state, risk = _three_books(), RiskState()
    limit = rule(action="pause_strategy", **CORRELATION)
    m, events = risk_step(state, _ctx(X100), risk, [limit], {}, PAIR_RETURNS)
    assert m.portfolio["strategy_correlation"] == pytest.approx(1.0)
    assert m.detail["correlated_pair"] == ["A", "B"]
    # B (mean 0.002) is the weaker of the pair; C (-0.006), the old choice, is not in it
    assert [s.active for s in state.strategies] == [True, False, True]
    assert events[0].message == "paused B" and risk.paused_by == {"B": [(1, "")]}


def test_a_later_drawdown_pause_does_not_take_over_the_correlation_pause():
    state, risk = _three_books(), RiskState()
    corr = rule(action="pause_strategy", **CORRELATION)
    dd = rule(
        id=2,
        scope="strategy",
        metric="drawdown",
        direction="min",
        threshold=-0.1,
        severity="medium",
        action="pause_strategy",
        recovery_threshold=-0.05,
    )
    risk_step(state, _ctx(X100), risk, [corr, dd], {}, PAIR_RETURNS)
    b = state.strategies[1]
    b.nav = 0.85  # B then draws down 15% while paused: its own limit opens too
    risk_step(state, _ctx(X100, date(2024, 3, 4)), risk, [corr, dd], {}, PAIR_RETURNS)
    assert risk.paused_by == {"B": [(1, ""), (2, "B")]}
    b.nav = 0.99  # the drawdown recovers: B stays paused, the correlation is still open
    _, events = risk_step(state, _ctx(X100, date(2024, 3, 5)), risk, [corr, dd], {}, PAIR_RETURNS)
    assert [e.kind for e in events] == ["resolved"] and "stays paused" in events[0].message
    assert not b.active and risk.paused_by == {"B": [(1, "")]}
    # once the pair decorrelates, the correlation violation resolves and B resumes
    # (A and B uncorrelated, each 0.71 with C)
    calm = np.array([[1, 0, 1], [0, 1, 1], [-1, 0, -1], [0, -1, -1]] * 3) / 100
    _, events = risk_step(state, _ctx(X100, date(2024, 3, 6)), risk, [corr], {}, calm)
    assert [e.kind for e in events] == ["resolved"] and "resumed B" in events[0].message
    assert b.active and risk.paused_by == {}


def test_an_open_correlation_pause_that_holds_nobody_pauses_again():
    state, risk = _three_books(), RiskState()
    limit = rule(action="pause_strategy", **CORRELATION)
    risk_step(state, _ctx(X100), risk, [limit], {}, PAIR_RETURNS)
    # something else resumed B (say another breach's recovery) while the pair is still
    # correlated: the violation keeps acting
    state.strategies[1].active, risk.paused_by = True, {}
    _, events = risk_step(state, _ctx(X100, date(2024, 3, 4)), risk, [limit], {}, PAIR_RETURNS)
    assert [(e.kind, e.message) for e in events] == [("enforced", "paused B")]
    # an operator override (the breach marked overridden) is respected
    state.strategies[1].active, risk.paused_by = True, {}
    risk.open[(1, "")].overridden = True
    assert risk_step(state, _ctx(X100, date(2024, 3, 5)), risk, [limit], {}, PAIR_RETURNS)[1] == []
