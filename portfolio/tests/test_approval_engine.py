"""Trade approval in the daily cycle (``portfolio.engine.cycle``, "Trade approval"): a
gated strategy's signal orders fill only when approved before the next bar; every held
decision gets exactly one outcome; approving every decision trades exactly as no gate."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from portfolio.engine.book import Book, Execution
from portfolio.engine.cycle import PortfolioState, StrategyState, apply_dates

DATES = [date(2024, 1, d) for d in (2, 3, 4, 5, 8, 9, 10, 11)]
CLOSES = pd.DataFrame(
    {
        "A": [10.0, 10.5, 10.2, 11.0, 11.4, 11.1, 11.8, 12.0],
        "B": [20.0, 19.5, 19.8, 20.6, 20.1, 21.0, 21.4, 20.9],
    },
    index=pd.to_datetime(DATES),
)
# the gated strategy's targets flip between the two tickers, so every decision trades
FLIP = pd.DataFrame(
    {"A": [1.0, 0.0, 1.0, 0.0, 0.6, 0.2, 1.0, 0.0], "B": [0.0, 1.0, 0.0, 1.0, 0.4, 0.8, 0.0, 1.0]},
    index=CLOSES.index,
)
EX = Execution(commission_bps=1.0, slippage_bps=2.0)


def _state(gated: bool, reviews: dict | None = None) -> PortfolioState:
    return PortfolioState(
        initial_capital=1000.0,
        leverage_target=1.0,
        rebalance_frequency="monthly",
        strategies=[
            StrategyState(
                "gated",
                0.5,
                True,
                "daily",
                EX,
                Book(),
                approval_required=gated,
                reviews=dict(reviews or {}),
            ),
            StrategyState("free", 0.5, True, "daily", EX, Book()),
        ],
    )


def _targets():
    return {"gated": FLIP, "free": FLIP[["B", "A"]].set_axis(["A", "B"], axis=1)}


def _signal_fills(days, name):
    return [(d.date, f) for d in days for n, f in d.fills if n == name and f.reason == "signal"]


def test_without_approvals_a_gated_strategy_never_fills_and_every_decision_expires():
    days = apply_dates(state := _state(True), CLOSES, _targets(), DATES)
    assert _signal_fills(days, "gated") == []
    assert _signal_fills(days, "free")  # the other book trades as usual
    held = [o for d in days for o in d.order_decisions]
    # funded on the first bar, then a decision at every close (each would trade)
    assert [o.decided_on for o in held] == DATES
    assert all(o.name == "gated" and o.orders for o in held)
    outcomes = [o for d in days for o in d.order_outcomes]
    assert [(o.decided_on, o.day) for o in outcomes] == list(zip(DATES[:-1], DATES[1:]))
    assert {o.status for o in outcomes} == {"expired"}
    assert {o.cause for o in outcomes} == {"not approved before the next bar"}
    # the last decision still waits, and the book holds only its cash
    assert state.strategies[0].reviews == {DATES[-1]: "pending"}
    assert state.strategies[0].book.holdings == {}


def test_approving_every_decision_trades_exactly_as_no_gate():
    free = apply_dates(_state(False), CLOSES, _targets(), DATES)
    approved = apply_dates(_state(True, {d: "approved" for d in DATES}), CLOSES, _targets(), DATES)
    fills = lambda days: [(d.date, n, f) for d in days for n, f in d.fills]  # noqa: E731
    assert fills(approved) == fills(free)  # every float bit for bit
    assert [d.portfolio for d in approved] == [d.portfolio for d in free]
    outcomes = [o for d in approved for o in d.order_outcomes]
    assert {o.status for o in outcomes} == {"filled"}
    # the outcome counts the signal fills of the bar, and the decision's indicative orders
    # are those fills' quantities at the decision's close
    for d, prev in zip(approved[1:], approved[:-1], strict=True):
        (o,) = d.order_outcomes
        mine = [f for n, f in d.fills if n == "gated"]
        assert o.fills == len(mine) > 0
        (decision,) = prev.order_decisions
        assert [t for t, _, _ in decision.orders] == [f.ticker for f in mine]
        assert [np.sign(q) for _, q, _ in decision.orders] == [np.sign(f.quantity) for f in mine]


def test_an_approved_decision_fills_at_the_next_bar_only_and_a_rejected_one_never():
    d1, d2, d3 = DATES[1], DATES[2], DATES[3]
    days = apply_dates(_state(True, {d1: "approved", d2: "rejected"}), CLOSES, _targets(), DATES)
    assert sorted({day for day, _ in _signal_fills(days, "gated")}) == [d2]
    by_decision = {o.decided_on: o for d in days for o in d.order_outcomes}
    assert by_decision[d1].status == "filled" and by_decision[d1].day == d2
    assert by_decision[d2].status == "rejected" and by_decision[d2].day == d3
    assert by_decision[d3].status == "expired"
    # the book keeps what the approved decision bought (FLIP at d1: all B)
    assert list(_state_after(days)) == ["B"]


def _state_after(days):
    return {f.ticker for _, f in _signal_fills(days, "gated")}


def test_a_paused_gated_strategy_holds_nothing_and_an_approval_of_a_paused_day_expires():
    state = _state(True, {DATES[0]: "approved"})
    apply_dates(state, CLOSES, _targets(), DATES[:1])
    state.strategies[0].active = False  # paused between the bars
    days = apply_dates(state, CLOSES, _targets(), DATES[1:3])
    (o,) = days[0].order_outcomes
    assert (o.status, o.cause) == ("expired", "strategy paused")
    assert [d.order_decisions for d in days] == [[], []]  # nothing to approve while paused


def test_switching_approval_on_expires_the_decision_made_before_and_off_fills_a_held_one():
    state = _state(False)
    apply_dates(state, CLOSES, _targets(), DATES[:2])
    state.strategies[0].approval_required = True
    days = apply_dates(state, CLOSES, _targets(), DATES[2:4])
    (o,) = days[0].order_outcomes
    assert (o.decided_on, o.status) == (DATES[1], "expired")
    assert o.cause.startswith("not held for approval")
    assert _signal_fills(days, "gated") == []
    state.strategies[0].approval_required = False  # the held decision of DATES[3]
    days = apply_dates(state, CLOSES, _targets(), DATES[4:5])
    (o,) = days[0].order_outcomes
    assert (o.status, o.cause) == ("filled", "approval no longer required")
    assert _signal_fills(days, "gated")


@pytest.mark.parametrize("split", [1, 3, 5])
def test_the_outcome_does_not_depend_on_how_the_bars_are_chunked(split):
    reviews = {DATES[1]: "approved", DATES[4]: "approved", DATES[5]: "rejected"}
    whole = apply_dates(_state(True, reviews), CLOSES, _targets(), DATES)
    state = _state(True, reviews)
    parts = apply_dates(state, CLOSES, _targets(), DATES[:split])
    parts += apply_dates(state, CLOSES, _targets(), DATES[split:])
    assert [(d.fills, d.order_outcomes, d.order_decisions) for d in parts] == [
        (d.fills, d.order_outcomes, d.order_decisions) for d in whole
    ]
