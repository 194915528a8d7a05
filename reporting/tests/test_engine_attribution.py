"""Strategy attribution: contributions that add up to the portfolio return, linked over
time, and Brinson-Fachler effects that add up to the active return. Hand-worked frames,
hypothesis properties, and a monthly-rebalanced book built from the bundled prices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from reporting.engine.attribution import (
    brinson_fachler,
    cumulative_contributions,
    daily_contributions,
    linked_brinson_fachler,
    period_brinson_fachler,
    period_contributions,
    previous_close_weights,
    strategy_returns,
)

# Two books over Tue 30 Jan .. Fri 2 Feb 2024. On 1 Feb 5 moves from a to b at the close.
# Day 31 Jan: P 100 -> 104; w .6 / .4; r_a 66/60 - 1 = .1, r_b 38/40 - 1 = -.05;
#   c_a .06, c_b -.02, sum .04 = 104/100 - 1.
# Day 1 Feb: w 66/104, 38/104; r_a (60 + 5)/66 - 1 = -1/66, r_b (42 - 5)/38 - 1 = -1/38;
#   c_a = c_b = -1/104; sum -2/104 = 102/104 - 1 (the 5 moved changes nothing).
# Day 2 Feb: w 60/102, 42/102; r_a .05, r_b 44/42 - 1; c_a 3/102, c_b 2/102; P 107.
DATES = pd.bdate_range("2024-01-30", periods=4)
EQUITY = pd.DataFrame({"a": [60.0, 66, 60, 63], "b": [40.0, 38, 42, 44]}, index=DATES)
FLOWS = pd.DataFrame({"a": [0.0, 0, -5, 0], "b": [0.0, 0, 5, 0]}, index=DATES)


def test_strategy_returns_take_the_moved_capital_out():
    r = strategy_returns(EQUITY, FLOWS)
    assert r.index.equals(DATES[1:])
    assert_allclose(r["a"], [0.1, -1 / 66, 0.05])
    assert_allclose(r["b"], [-0.05, -1 / 38, 44 / 42 - 1])


def test_daily_contributions_add_up_to_the_portfolio_return():
    c = daily_contributions(EQUITY, FLOWS)
    assert_allclose(c["a"], [0.06, -1 / 104, 3 / 102])
    assert_allclose(c["b"], [-0.02, -1 / 104, 2 / 102])
    total = EQUITY.sum(axis=1)
    assert_allclose(c.sum(axis=1), (total / total.shift(1) - 1).iloc[1:], rtol=1e-14)
    # Weights at the previous close times returns is the same number.
    w, r = previous_close_weights(EQUITY), strategy_returns(EQUITY, FLOWS)
    assert_allclose(w * r, c, rtol=1e-14)


def test_cumulative_contributions_stack_to_the_cumulative_portfolio_return():
    # c * G_{t-1} is each day's P&L over the starting 100: a +6, -1, +3; b -2, -1, +2.
    # Cumulative a .06, .05, .08; b -.02, -.03, -.01; sums .04, .02, .07 = P_t / 100 - 1.
    cum = cumulative_contributions(daily_contributions(EQUITY, FLOWS))
    assert_allclose(cum["a"], [0.06, 0.05, 0.08], rtol=1e-13)
    assert_allclose(cum["b"], [-0.02, -0.03, -0.01], rtol=1e-13)
    assert_allclose(cum.sum(axis=1), [0.04, 0.02, 0.07], rtol=1e-13)


def test_period_contributions_restart_the_linking_each_month():
    # Jan (31 Jan only): a .06, b -.02.
    # Feb: a -1/104 + 3/102 * (1 - 2/104) = -1/104 + 3/104 = 2/104; b -1/104 + 2/104 = 1/104;
    # sum 3/104 = 107/104 - 1, February's portfolio return.
    monthly = period_contributions(daily_contributions(EQUITY, FLOWS), "M")
    assert list(monthly.index) == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-02")]
    assert_allclose(monthly["a"], [0.06, 2 / 104], rtol=1e-13)
    assert_allclose(monthly["b"], [-0.02, 1 / 104], rtol=1e-13)
    yearly = period_contributions(daily_contributions(EQUITY, FLOWS), "Y")
    assert_allclose(yearly.to_numpy(), [[0.08, -0.01]], rtol=1e-13)


def test_an_unfunded_book_contributes_nothing():
    # Book c is funded with 10 taken from a at the close of 1 Feb: before that it has no
    # return (NaN) and no weight; on 2 Feb it is flat (r 0).
    equity = EQUITY.assign(a=[60.0, 66, 50, 52.5], c=[0.0, 0.0, 10.0, 10.0])
    flows = FLOWS.assign(a=[0.0, 0.0, -15.0, 0.0], c=[0.0, 0.0, 10.0, 0.0])
    r = strategy_returns(equity, flows)
    assert r["c"].iloc[:2].isna().all() and r["c"].iloc[2] == 0
    c = daily_contributions(equity, flows)
    assert_allclose(c["c"], [0.0, 0.0, 0.0])
    total = equity.sum(axis=1)
    assert_allclose(c.sum(axis=1), (total / total.shift(1) - 1).iloc[1:])


def test_bad_equity_is_rejected():
    with pytest.raises(ValueError, match=">= 0"):
        daily_contributions(EQUITY.assign(a=-1.0))
    with pytest.raises(ValueError, match="dates and columns"):
        daily_contributions(EQUITY, FLOWS.iloc[1:])


# Brinson-Fachler, one period: w .6 / .4, b .5 / .5, r .1 / -.05.
# R_p = .06 - .02 = .04, R_b = .05 - .025 = .025, active .015.
# Allocation a .1 (.1 - .025) = .0075, b -.1 (-.05 - .025) = .0075; selection and
# interaction 0 (the benchmark holds the same books).
W = pd.Series({"a": 0.6, "b": 0.4})
B = pd.Series({"a": 0.5, "b": 0.5})
R = pd.Series({"a": 0.1, "b": -0.05})


def test_brinson_fachler_against_the_target_mix_is_all_allocation():
    e = brinson_fachler(W, B, R)
    assert_allclose(e.allocation, [0.0075, 0.0075])
    assert (e.selection == 0).all() and (e.interaction == 0).all()
    assert_allclose([e.portfolio_return, e.benchmark_return, e.active_return], [0.04, 0.025, 0.015])
    assert_allclose(e.total.sum(), e.active_return)


def test_brinson_fachler_with_segment_benchmarks_splits_selection_and_interaction():
    # B_i = .08 / -.02: R_b = .04 - .01 = .03, active .04 - .03 = .01.
    # Allocation a .1 (.08 - .03) = .005, b -.1 (-.02 - .03) = .005;
    # selection a .5 (.1 - .08) = .01, b .5 (-.05 + .02) = -.015;
    # interaction a .1 * .02 = .002, b -.1 * -.03 = .003. Sum .01.
    e = brinson_fachler(W, B, R, pd.Series({"b": -0.02, "a": 0.08}))
    assert_allclose(e.allocation, [0.005, 0.005])
    assert_allclose(e.selection, [0.01, -0.015])
    assert_allclose(e.interaction, [0.002, 0.003])
    assert_allclose(e.total.sum(), 0.01)
    assert_allclose(e.active_return, 0.01)


def test_brinson_fachler_rejects_weights_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        brinson_fachler(W * 0.9, B, R)
    with pytest.raises(ValueError, match="strategies"):
        brinson_fachler(W, B, pd.Series({"a": 0.1, "c": 0.0}))


def test_linked_brinson_fachler_sums_to_the_compounded_active_return():
    # Days 31 Jan and 1 Feb of the hand frame, target .5 / .5.
    # Day 1: R_p .04, R_b .025, allocation .015. Day 2: R_p -2/104,
    # R_b .5 (-1/66 - 1/38). GRAP: allocation = .015 (1 + R_b2) + (R_p2 - R_b2) 1.04,
    # which is 1.04 (1 + R_p2) - 1.025 (1 + R_b2) = (1.02) - 1.025 (1 + R_b2).
    w = previous_close_weights(EQUITY).iloc[:2]
    r = strategy_returns(EQUITY, FLOWS).iloc[:2]
    rp2, rb2 = -2 / 104, 0.5 * (-1 / 66 - 1 / 38)
    e = linked_brinson_fachler(w, B, r)
    assert_allclose(e.allocation.sum(), 0.015 * (1 + rb2) + (rp2 - rb2) * 1.04, rtol=1e-13)
    assert_allclose(e.portfolio_return, 0.02, rtol=1e-13)
    assert_allclose(e.benchmark_return, 1.025 * (1 + rb2) - 1, rtol=1e-13)
    assert_allclose(e.total.sum(), e.active_return, rtol=1e-13)
    # Per month, the linking restarts: January is day 1 alone.
    monthly = period_brinson_fachler(w, B, r, freq="M")
    assert_allclose(monthly["allocation"], [0.015, rp2 - rb2], rtol=1e-13)
    assert_allclose(monthly["active_return"], [0.015, rp2 - rb2], rtol=1e-13)


# --- properties --------------------------------------------------------------------------

positive = st.floats(0.05, 10.0)


@st.composite
def books(draw):
    """An equity frame of 1-4 books over 2-30 days with zero-sum capital moves."""
    k, n = draw(st.integers(1, 4)), draw(st.integers(2, 30))
    start = draw(arrays(float, k, elements=positive))
    growth = draw(arrays(float, (n - 1, k), elements=st.floats(0.5, 1.5)))
    shares = draw(arrays(float, (n - 1, k), elements=st.floats(0.0, 1.0, allow_subnormal=False)))
    move = draw(st.booleans())
    equity, flows = np.zeros((n, k)), np.zeros((n, k))
    equity[0] = start
    for t in range(1, n):
        grown = equity[t - 1] * growth[t - 1]
        if move and shares[t - 1].sum() > 0:
            target = grown.sum() * shares[t - 1] / shares[t - 1].sum()
            flows[t] = target - grown  # sums to 0 across books
            grown = target
        equity[t] = grown
    index = pd.bdate_range("2023-12-20", periods=n)
    cols = list("abcd"[:k])
    return pd.DataFrame(equity, index, cols), pd.DataFrame(flows, index, cols)


@settings(max_examples=150, deadline=None)
@given(books())
def test_cumulative_contributions_always_sum_to_the_cumulative_portfolio_return(data):
    equity, flows = data
    c = daily_contributions(equity, flows)
    total = equity.sum(axis=1)
    assert_allclose(c.sum(axis=1), (total / total.shift(1) - 1).iloc[1:], atol=1e-12)
    cum = cumulative_contributions(c)
    assert_allclose(cum.sum(axis=1), (total / total.iloc[0] - 1).iloc[1:], atol=1e-11)
    months = period_contributions(c, "M").sum(axis=1)
    compounded = (1 + c.sum(axis=1)).groupby(c.index.to_period("M")).prod() - 1
    assert_allclose(months, compounded, atol=1e-11)


@settings(max_examples=150, deadline=None)
@given(books(), st.data())
def test_brinson_effects_always_sum_to_the_active_return(data, draw):
    equity, flows = data
    k = equity.shape[1]
    raw = draw.draw(arrays(float, k, elements=positive))
    target = pd.Series(raw / raw.sum(), index=equity.columns)
    # A book emptied by a capital move has no return the next day (NaN); Brinson needs one
    # for the target mix, so the caller supplies it (here 0; its weight is 0 anyway).
    w, r = previous_close_weights(equity), strategy_returns(equity, flows).fillna(0.0)
    shift = draw.draw(st.floats(-0.05, 0.05))
    segment = (r * draw.draw(st.floats(0.0, 2.0)) + shift).clip(lower=-0.99)
    for seg in (None, segment):
        e = linked_brinson_fachler(w, target, r, seg)
        # linked (compounded) over many days: a 1.1e-11 rounding gap was seen
        assert_allclose(e.total.sum(), e.active_return, atol=1e-10)
        rp = (w * r).sum(axis=1)
        assert_allclose(e.portfolio_return, np.prod(1 + rp) - 1, atol=1e-11)
        monthly = period_brinson_fachler(w, target, r, seg, freq="M")
        effects = monthly[["allocation", "selection", "interaction"]].sum(axis=1)
        assert_allclose(effects, monthly["active_return"], atol=1e-11)
        one = brinson_fachler(w.iloc[-1], target, r.iloc[-1], None if seg is None else seg.iloc[-1])
        assert_allclose(one.total.sum(), one.active_return, atol=1e-12)


# --- the bundled real prices ---------------------------------------------------------------


def test_a_monthly_rebalanced_book_of_real_prices_is_fully_attributed():
    """Three books (AAPL, an equal-weight basket rebalanced daily, the S&P 500) at target
    .5 / .3 / .2, rebalanced on the first bar of each month. The portfolio equity is built
    separately by numpy; the attribution must reproduce its return without residual."""
    from portfolio.feeds import closes_frame

    returns = closes_frame().pct_change().iloc[1:]
    books_r = pd.DataFrame(
        {
            "aapl": returns["AAPL"],
            "basket": returns.drop(columns="SP500").mean(axis=1),
            "index": returns["SP500"],
        }
    ).iloc[:2000]
    target = np.array([0.5, 0.3, 0.2])
    first_bar = books_r.index.month != books_r.index.to_series().shift(1).dt.month
    equity, flows = np.zeros(books_r.shape), np.zeros(books_r.shape)
    held = target * 1_000_000.0
    for t, (row, rebalance) in enumerate(zip(books_r.to_numpy(), first_bar, strict=True)):
        held = held * (1 + row)
        if rebalance and t > 0:
            flows[t] = target * held.sum() - held
            held = target * held.sum()
        equity[t] = held
    equity = pd.DataFrame(equity, books_r.index, books_r.columns)
    flows = pd.DataFrame(flows, books_r.index, books_r.columns)
    total = equity.sum(axis=1)

    cum = cumulative_contributions(daily_contributions(equity, flows))
    assert_allclose(cum.sum(axis=1), (total / total.iloc[0] - 1).iloc[1:], rtol=1e-10)
    assert_allclose(strategy_returns(equity, flows), books_r.iloc[1:], rtol=1e-9, atol=1e-13)

    b = pd.Series(target, index=books_r.columns)
    e = linked_brinson_fachler(previous_close_weights(equity), b, strategy_returns(equity, flows))
    assert_allclose(e.portfolio_return, total.iloc[-1] / total.iloc[0] - 1, rtol=1e-10)
    assert_allclose(e.total.sum(), e.active_return, rtol=1e-10)
    # A monthly-rebalanced book drifts from the daily-rebalanced target mix, so the active
    # return is small but not zero, and all of it is allocation.
    assert 0 < abs(e.active_return) < 0.5 and (e.selection == 0).all()
