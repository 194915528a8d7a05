"""Allocation methods (engine): hand-worked numbers, invariants, and skfolio cross-checks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from portfolio.engine.allocation import (
    AllocationError,
    AllocationParams,
    allocation_targets,
    bounded_weights,
    hrp_weights,
    inverse_vol_weights,
    kelly_weights,
    performance_scores,
    risk_contributions,
    risk_parity_weights,
)


def test_inverse_volatility_weights_by_hand():
    # column a: +-1% (std of [1,-1,1,-1]% with ddof=1 = 1.1547%), b: +-2% -> 2.3094%.
    # 1/sigma: 86.6, 43.3 -> weights 2/3, 1/3.
    r = np.array([[0.01, 0.02], [-0.01, -0.02], [0.01, 0.02], [-0.01, -0.02]])
    assert_allclose(inverse_vol_weights(r), [2 / 3, 1 / 3], rtol=1e-15)
    with pytest.raises(AllocationError, match="volatility > 0"):
        inverse_vol_weights(np.array([[0.01, 0.0], [0.02, 0.0]]))


def test_risk_contributions_sum_to_portfolio_vol():
    cov = np.array([[0.04, 0.006], [0.006, 0.09]])
    w = np.array([0.6, 0.4])
    # S w = [0.024 + 0.0024, 0.0036 + 0.036] = [0.0264, 0.0396]; w'Sw = 0.01584 + 0.01584
    rc = risk_contributions(w, cov)
    assert_allclose(rc, [0.6 * 0.0264, 0.4 * 0.0396] / np.sqrt(0.03168), rtol=1e-14)
    assert_allclose(rc.sum(), np.sqrt(0.03168), rtol=1e-14)


def test_risk_parity_of_uncorrelated_assets_is_inverse_volatility():
    # uncorrelated: RC_i ∝ w_i^2 sigma_i^2, so equal RC <=> w_i ∝ 1/sigma_i: 0.2 vs 0.1 vol
    cov = np.diag([0.04, 0.01])
    assert_allclose(risk_parity_weights(cov), [1 / 3, 2 / 3], rtol=1e-12)
    # budgets 1:4 -> w_i ∝ sqrt(b_i)/sigma_i = 1/0.2 : 2/0.1 = 5 : 20
    assert_allclose(risk_parity_weights(cov, np.array([1.0, 4.0])), [0.2, 0.8], rtol=1e-12)


def test_risk_parity_refuses_a_non_positive_budget():
    with pytest.raises(AllocationError, match="positive budgets"):
        risk_parity_weights(np.diag([0.04, 0.01]), np.array([1.0, 0.0]))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 12),
    budget_skew=st.floats(0.0, 3.0),
)
def test_risk_parity_contributions_equal_their_budgets(seed, n, budget_skew):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    cov = a @ a.T / n + np.diag(rng.uniform(0.01, 1.0, n))
    budgets = np.exp(budget_skew * rng.normal(size=n))
    w = risk_parity_weights(cov, budgets)
    shares = risk_contributions(w, cov) / math.sqrt(w @ cov @ w)
    assert np.all(w > 0)
    assert_allclose(w.sum(), 1.0, rtol=1e-14)
    assert_allclose(shares, budgets / budgets.sum(), atol=1e-9)


def test_bounded_performance_weights_by_hand():
    # scores 3, 1, 0, -1 -> floored 3, 1, 0, 0. Bounds [0.1, 0.5]: w = clip(lam*s, .1, .5).
    # The two zero scores sit at the floor (0.2 together); 3*lam above the cap -> 0.5;
    # so lam*1 = 1 - 0.5 - 0.2 = 0.3 (inside the bounds): [0.5, 0.3, 0.1, 0.1].
    assert_allclose(bounded_weights(np.array([3.0, 1, 0, -1]), 0.1, 0.5), [0.5, 0.3, 0.1, 0.1])
    # without bounds it is plain proportional: 3/4, 1/4
    assert_allclose(bounded_weights(np.array([3.0, 1, 0, -1]), 0.0, 1.0), [0.75, 0.25, 0, 0])
    # every score <= 0: equal weights
    assert_allclose(bounded_weights(np.array([-1.0, 0.0]), 0.0, 1.0), [0.5, 0.5])
    with pytest.raises(AllocationError, match="cannot hold"):
        bounded_weights(np.array([1.0, 2.0]), 0.6, 0.9)


@settings(max_examples=100, deadline=None)
@given(
    scores=st.lists(st.floats(-5, 5), min_size=2, max_size=10),
    lo_frac=st.floats(0, 1),
    hi_frac=st.floats(0, 1),
)
def test_bounded_weights_hold_floor_and_cap_and_sum_to_one(scores, lo_frac, hi_frac):
    n = len(scores)
    lo = lo_frac / n  # any floor with n*lo <= 1
    hi = 1 / n + hi_frac * (1 - 1 / n)  # any cap with n*hi >= 1
    hi = max(hi, lo)
    w = bounded_weights(np.array(scores), lo, hi)
    assert_allclose(w.sum(), 1.0, rtol=1e-12)
    assert np.all(w >= lo - 1e-12) and np.all(w <= hi + 1e-12)


def test_performance_scores_sharpe_and_sortino_by_hand():
    r = np.array([[0.01], [-0.01], [0.02], [0.0]])
    # mean 0.005; std ddof=1 of [1,-1,2,0]% = sqrt(((.5)^2+(1.5)^2+(1.5)^2+(.5)^2)/3)% = 1.291%
    sharpe = 0.005 / (np.sqrt(5 / 3) / 100) * np.sqrt(252)
    # downside deviation: sqrt(mean(min(r,0)^2)) = sqrt(0.0001/4) = 0.005
    sortino = 0.005 / 0.005 * np.sqrt(252)
    assert_allclose(performance_scores(r, "sharpe"), [sharpe], rtol=1e-12)
    assert_allclose(performance_scores(r, "sortino"), [sortino], rtol=1e-12)


def test_kelly_by_hand_uncorrelated_and_capped():
    # two uncorrelated columns (orthogonal +-1 patterns), means 0.001 and 0.002.
    base = np.array([1.0, -1.0, 1.0, -1.0])
    other = np.array([1.0, 1.0, -1.0, -1.0])
    r = np.column_stack([0.001 + 0.01 * base, 0.002 + 0.02 * other])
    var = np.var(r, axis=0, ddof=1)  # 0.0001*4/3 and 0.0004*4/3
    full = np.array([0.001, 0.002]) / var  # f_i = mu_i / sigma_i^2 = 7.5, 3.75
    assert_allclose(kelly_weights(r, 1.0, 100.0), full, rtol=1e-9)
    assert_allclose(kelly_weights(r, 0.5, 100.0), 0.5 * full, rtol=1e-9)
    capped = kelly_weights(r, 0.5, 1.5)  # 5.625 total, scaled to 1.5
    assert_allclose(capped, 0.5 * full * 1.5 / (0.5 * full.sum()), rtol=1e-9)
    assert_allclose(capped.sum(), 1.5, rtol=1e-12)


def test_long_only_kelly_gives_a_losing_strategy_nothing():
    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.01, size=(500, 2))
    r[:, 0] += 0.001 - r[:, 0].mean()
    r[:, 1] += -0.001 - r[:, 1].mean()
    f = kelly_weights(r, 0.5, 10.0, long_only=True)
    assert f[0] > 0 and f[1] == 0.0
    unconstrained = kelly_weights(r, 0.5, 10.0, long_only=False)
    assert unconstrained[1] < 0  # the unconstrained optimum would short it


def test_hrp_of_two_assets_is_inverse_variance():
    rng = np.random.default_rng(1)
    r = rng.normal(size=(300, 2)) * [0.01, 0.02]
    var = np.var(r, axis=0, ddof=1)
    assert_allclose(hrp_weights(r), (1 / var) / (1 / var).sum(), rtol=1e-12)


def _bundled_returns(tickers: list[str], start="2015-01-01", end="2019-12-31") -> np.ndarray:
    from portfolio.feeds import closes_frame

    closes = closes_frame().loc[start:end, tickers]
    return closes.pct_change().dropna().to_numpy()


TICKERS = ["AAPL", "JPM", "XOM", "KO", "PG", "MSFT", "CVX", "WMT"]


def test_risk_parity_matches_skfolio_risk_budgeting_on_real_returns():
    from skfolio import RiskMeasure
    from skfolio.optimization import RiskBudgeting

    r = _bundled_returns(TICKERS)
    budgets = np.arange(1.0, len(TICKERS) + 1)
    ours = risk_parity_weights(np.cov(r, rowvar=False), budgets)
    theirs = RiskBudgeting(
        risk_measure=RiskMeasure.VARIANCE, risk_budget=budgets / budgets.sum()
    ).fit(r)
    # skfolio solves the same problem with a conic solver (CLARABEL) to its default
    # tolerance; ours is exact to 1e-9 in the contributions, so they agree to ~1e-5.
    assert_allclose(ours, theirs.weights_, atol=1e-4)
    cov = np.cov(r, rowvar=False)
    ours_err = np.abs(risk_contributions(ours, cov) / np.sqrt(ours @ cov @ ours) - budgets / 36)
    assert ours_err.max() < 1e-9


def skfolio_hrp_weights(returns: np.ndarray) -> np.ndarray:
    """skfolio's HRP configured as Lopez de Prado's original: single linkage and the tree's
    own leaf order (skfolio defaults to Ward and an optimal leaf reordering, which change
    the weights)."""
    from skfolio import RiskMeasure
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.distance import PearsonDistance
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.seriation import HierarchicalSeriation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = HierarchicalRiskParity(
            risk_measure=RiskMeasure.VARIANCE,
            distance_estimator=PearsonDistance(),
            seriation_estimator=HierarchicalSeriation(
                hierarchical_clustering_estimator=HierarchicalClustering(
                    linkage_method=LinkageMethod.SINGLE
                ),
                optimal_ordering=False,
            ),
        ).fit(returns)
    return model.weights_


def test_hrp_matches_skfolio_with_the_same_clustering_and_ordering():
    r = _bundled_returns(TICKERS)
    assert_allclose(hrp_weights(r, "single"), skfolio_hrp_weights(r), atol=1e-12)


def _targets(method, r, **kw):
    names = ["a", "b", "c"]
    params = AllocationParams(method=method, lookback=60, min_history=40, **kw)
    return allocation_targets(
        params,
        names=names,
        static={"a": 0.3, "b": 0.4, "c": 0.3},
        current={"a": 0.3, "b": 0.4, "c": 0.3},
        active={"a": True, "b": True, "c": True},
        history_days={"a": 100, "b": 100, "c": 100},
        returns=r,
        leverage_target=1.0,
    )


def test_allocation_targets_sum_to_the_leverage_target_and_explain_each_weight():
    r = _bundled_returns(["AAPL", "JPM", "XOM"])[-200:]
    for method in ("inverse_volatility", "risk_parity", "performance"):
        result = _targets(method, r)
        assert_allclose(sum(result.allocations.values()), 1.0, rtol=1e-12)
        assert set(result.notes) == {"a", "b", "c"}
        assert all("allocation" in note for note in result.notes.values())
    inv = _targets("inverse_volatility", r)
    assert_allclose([inv.allocations[n] for n in "abc"], inverse_vol_weights(r[-60:]), rtol=1e-12)


def test_a_young_strategy_keeps_its_static_weight_and_a_paused_one_its_current():
    r = _bundled_returns(["AAPL", "JPM", "XOM"])[-200:]
    result = allocation_targets(
        AllocationParams(method="inverse_volatility", lookback=60, min_history=40),
        names=["a", "b", "c"],
        static={"a": 0.3, "b": 0.4, "c": 0.3},
        current={"a": 0.25, "b": 0.5, "c": 0.25},
        active={"a": True, "b": True, "c": False},
        history_days={"a": 100, "b": 39, "c": 100},
        returns=r,
        leverage_target=1.0,
    )
    assert result.allocations["b"] == 0.4 and "40 days of history (has 39)" in result.notes["b"]
    assert result.allocations["c"] == 0.25 and "paused" in result.notes["c"]
    assert result.allocations["a"] == pytest.approx(1.0 - 0.4 - 0.25)  # all that is left


def test_hierarchical_budget_scales_the_total_to_the_volatility_target():
    r = _bundled_returns(["AAPL", "JPM", "XOM"])[-200:]
    result = _targets("hierarchical_risk_budget", r, vol_target=0.05, max_leverage=2.0)
    w = np.array([result.allocations[n] for n in "abc"])
    window = r[-60:]
    vol = math.sqrt(252 * w @ np.cov(window, rowvar=False) @ w)
    assert_allclose(vol, 0.05, rtol=1e-12)  # the portfolio's risk budget, exactly
    assert_allclose(w / w.sum(), hrp_weights(window), rtol=1e-12)
