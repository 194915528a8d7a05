"""risk.engine.montecarlo: the stationary bootstrap, the value and drawdown paths, and the
breach probability against a large-sample normal reference (no database)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from risk.engine.montecarlo import bootstrap_indices, simulate, value_paths


def _indices(seed: int, **kw) -> np.ndarray:
    args = {"n_obs": 50, "paths": 200, "horizon": 30, "mean_block": 5.0} | kw
    return bootstrap_indices(**args, rng=np.random.default_rng(seed))


def test_bootstrap_indices_have_the_shape_and_stay_in_range():
    idx = _indices(0)
    assert idx.shape == (200, 30)
    assert np.issubdtype(idx.dtype, np.integer)
    assert idx.min() == 0 and idx.max() == 49


def test_blocks_continue_with_consecutive_rows_and_wrap_circularly():
    idx = _indices(1, n_obs=7, mean_block=1e9)  # one block per path: never a new start
    np.testing.assert_array_equal(np.diff(idx, axis=1) % 7, 1)


def test_the_mean_block_length_is_mean_block():
    # A day after day 0 breaks the run (is not the previous row + 1) when a new block starts
    # (probability 1/m) at a row other than the continuing one (1 - 1/n): 0.2 * 0.999.
    n, m = 1000, 5.0
    idx = _indices(2, n_obs=n, paths=4000, horizon=250, mean_block=m)
    breaks = (np.diff(idx, axis=1) % n != 1).mean()
    expected = (1 / m) * (1 - 1 / n)
    se = math.sqrt(expected * (1 - expected) / (4000 * 249))  # about 0.0004
    assert abs(breaks - expected) < 5 * se
    assert abs(1 / breaks - 5.005) < 0.02  # mean block length


def test_mean_block_one_draws_independent_uniform_rows():
    # 40,000 pairs (day 0, day 1) over a 10 x 10 table: 400 expected per cell; a chi-square
    # test of independence and one of uniformity must not reject.
    idx = _indices(3, n_obs=10, paths=40_000, horizon=2, mean_block=1.0)
    table = np.zeros((10, 10))
    np.add.at(table, (idx[:, 0], idx[:, 1]), 1)
    assert stats.chi2_contingency(table).pvalue > 1e-3
    assert stats.chisquare(table.ravel()).pvalue > 1e-3
    assert abs((np.diff(idx, axis=1) % 10 == 1).mean() - 0.1) < 0.01  # no continuing blocks


def test_the_same_seed_gives_the_same_indices_and_another_seed_does_not():
    np.testing.assert_array_equal(_indices(7), _indices(7))
    assert not np.array_equal(_indices(7), _indices(8))


def test_value_and_drawdown_paths_by_hand():
    # p = r @ w with w = (0.5, 0.25), 25 % cash: rows 0.05, -0.075, 0.0125.
    r = np.array([[0.10, 0.00], [-0.20, 0.10], [0.05, -0.05]])
    p = r @ np.array([0.5, 0.25])
    np.testing.assert_allclose(p, [0.05, -0.075, 0.0125])
    idx = np.array([[0, 1], [1, 2], [2, 0]])
    values, dd = value_paths(portfolio_returns=p, idx=idx, value0=100.0)
    # path 0: 100, 105, 105 * 0.925 = 97.125; peak 105 -> drawdown 97.125 / 105 - 1 = -0.075
    # path 1: 100, 92.5, 92.5 * 1.0125 = 93.65625; drawdowns -0.075, -0.0634375
    # path 2: 100, 101.25, 101.25 * 1.05 = 106.3125; always at a new peak
    np.testing.assert_allclose(
        values, [[100, 105, 97.125], [100, 92.5, 93.65625], [100, 101.25, 106.3125]]
    )
    np.testing.assert_allclose(dd, [[0, 0, -0.075], [0, -0.075, -0.0634375], [0, 0, 0]], atol=1e-15)
    # Already 10 % below the risk peak: peak_0 = 100 / 0.9. Path 0 day 1: 105 * 0.9 / 100 - 1
    # = -0.055, day 2: 97.125 * 0.9 / 100 - 1 = -0.125875; path 2 day 2: -0.0431875.
    _, dd = value_paths(portfolio_returns=p, idx=idx, value0=100.0, start_drawdown=-0.1)
    np.testing.assert_allclose(dd[0], [-0.1, -0.055, -0.125875])
    np.testing.assert_allclose(dd[2], [-0.1, -0.08875, -0.0431875])


def test_constant_returns_give_a_known_future_on_every_path():
    # Every row is (1 %, 2 %), half in each: p = 1.5 % a day, V_10 = 1000 * 1.015^10.
    r = np.tile([0.01, 0.02], (4, 1))
    res = simulate(
        returns=r,
        weights=[0.5, 0.5],
        value0=1000,
        paths=50,
        horizon=10,
        mean_block=3,
        seed=0,
        drawdown_limit=-0.01,
    )
    assert res.terminal_quantiles[0.5] == pytest.approx(1000 * 1.015**10)  # 1160.54
    np.testing.assert_allclose(res.fan[2], 1000 * 1.015 ** np.arange(11))
    assert res.max_drawdown_quantiles == {0.05: 0.0, 0.5: 0.0, 0.95: 0.0}
    assert res.p_breach_drawdown == 0.0 and res.p_breach_stderr == 0.0 and res.p_loss == 0.0
    np.testing.assert_allclose(res.strategy_growth_quantiles[:, 1], [1.01**10, 1.02**10])


def test_a_steady_loss_breaches_exactly_the_limits_it_passes():
    # -1 % a day for 10 days: 0.99^10 = 0.904382, a max drawdown of -0.095618; from a start
    # 5 % below the peak: 0.95 * 0.904382 - 1 = -0.140837.
    r = np.full((3, 1), -0.01)
    kw = {"returns": r, "weights": [1.0], "value0": 1.0, "paths": 20, "horizon": 10}
    kw |= {"mean_block": 1, "seed": 0}
    assert simulate(**kw, drawdown_limit=-0.09).p_breach_drawdown == 1.0
    assert simulate(**kw, drawdown_limit=-0.10).p_breach_drawdown == 0.0
    res = simulate(**kw, drawdown_limit=-0.14, start_drawdown=-0.05)
    assert res.max_drawdown_quantiles[0.5] == pytest.approx(-0.140837, abs=1e-6)
    assert res.p_breach_drawdown == 1.0 and res.p_loss == 1.0
    assert simulate(**kw).p_breach_drawdown is None


def test_the_same_seed_gives_a_bit_identical_result_and_another_seed_does_not():
    r = np.random.default_rng(5).normal(0.0005, 0.01, (300, 3))
    kw = {"returns": r, "weights": [0.3, 0.3, 0.3], "value0": 1e6, "paths": 500}
    kw |= {"horizon": 60, "mean_block": 5, "drawdown_limit": -0.05}
    a, b, c = simulate(**kw, seed=11), simulate(**kw, seed=11), simulate(**kw, seed=12)
    assert a.to_dict() == b.to_dict()
    np.testing.assert_array_equal(a.fan, b.fan)
    assert a.to_dict()["terminal_value"] != c.to_dict()["terminal_value"]


def _reference(*, mu, sigma, paths, horizon, limit, seed):
    """Breach flags and terminal values of ``paths`` fresh i.i.d. N(mu, sigma) paths."""
    rng = np.random.default_rng(seed)
    breach, terminal = [], []
    for _ in range(paths // 20_000):
        v = np.cumprod(1 + rng.normal(mu, sigma, (20_000, horizon)), axis=1)
        peak = np.maximum(np.maximum.accumulate(v, axis=1), 1.0)
        breach.append((v / peak - 1 < limit).any(axis=1))
        terminal.append(v[:, -1])
    return np.concatenate(breach), np.concatenate(terminal)


def test_with_iid_normal_inputs_the_breach_probability_matches_a_large_sample_reference():
    # 20,000 i.i.d. normal rows of 3 independent strategies, bootstrapped i.i.d.
    # (mean_block=1); the reference is 200,000 fresh normal paths with the bootstrapped
    # distribution's mean and (ddof=0) standard deviation of p, monitored on the same days.
    rng = np.random.default_rng(2024)
    r = rng.normal([0.0004, 0.0002, 0.0006], [0.010, 0.015, 0.020], (20_000, 3))
    w = np.array([0.4, 0.3, 0.2])
    p = r @ w
    horizon, limit, n_mc, n_ref = 126, -0.08, 20_000, 200_000
    res = simulate(
        returns=r,
        weights=w,
        value0=1.0,
        paths=n_mc,
        horizon=horizon,
        mean_block=1,
        seed=3,
        drawdown_limit=limit,
        per_strategy=False,
    )
    breach, terminal = _reference(
        mu=p.mean(), sigma=p.std(), paths=n_ref, horizon=horizon, limit=limit, seed=4
    )
    q = breach.mean()
    assert 0.1 < q < 0.5  # a limit that makes the comparison informative
    # Within 4 combined binomial standard errors: sqrt(q(1-q)/20,000 + q(1-q)/200,000).
    se = math.sqrt(q * (1 - q) / n_mc + q * (1 - q) / n_ref)
    assert abs(res.p_breach_drawdown - q) < 4 * se
    assert res.p_breach_stderr == pytest.approx(
        math.sqrt(res.p_breach_drawdown * (1 - res.p_breach_drawdown) / n_mc)
    )
    # Terminal median in logs: log V_H is close to normal with sd s; the sample median's
    # standard error is sqrt(pi/2) s / sqrt(n); 4 combined standard errors again.
    s = np.log(terminal).std()
    se_med = math.sqrt(math.pi / 2) * s * math.sqrt(1 / n_mc + 1 / n_ref)
    assert abs(math.log(res.terminal_quantiles[0.5]) - math.log(np.median(terminal))) < 4 * se_med


def test_the_bootstrap_keeps_the_strategies_cross_correlation():
    rng = np.random.default_rng(9)
    a = rng.normal(0, 0.01, 3000)
    r = np.column_stack([a, 0.9 * a + math.sqrt(1 - 0.81) * rng.normal(0, 0.01, 3000)])
    target = np.corrcoef(r.T)[0, 1]  # about 0.9
    idx = bootstrap_indices(
        n_obs=3000, paths=400, horizon=252, mean_block=10, rng=np.random.default_rng(1)
    )
    sample = r[idx].reshape(-1, 2)
    assert abs(np.corrcoef(sample.T)[0, 1] - target) < 0.01
    # and the strategies' own terminal growths move together across the paths
    res = simulate(
        returns=r, weights=[0.5, 0.5], value0=1, paths=2000, horizon=60, mean_block=10, seed=1
    )
    g = res.strategy_growth_quantiles
    assert g[0, 0] < 1 < g[0, 2] and g[1, 0] < 1 < g[1, 2]


def test_blocks_keep_the_autocorrelation_the_iid_bootstrap_destroys():
    # AR(1) with phi = 0.5: a block bootstrap keeps lag-1 autocorrelation of about
    # phi * (1 - 1/m) = 0.475 at m = 20; the i.i.d. bootstrap (m = 1) leaves about 0.
    rng = np.random.default_rng(4)
    e = rng.normal(0, 1, 5000)
    x = np.empty(5000)
    x[0] = e[0]
    for t in range(1, 5000):
        x[t] = 0.5 * x[t - 1] + e[t]

    def lag1(m):
        idx = bootstrap_indices(
            n_obs=5000, paths=500, horizon=200, mean_block=m, rng=np.random.default_rng(2)
        )
        s = x[idx]
        return np.corrcoef(s[:, :-1].ravel(), s[:, 1:].ravel())[0, 1]

    assert abs(lag1(20) - 0.475) < 0.03
    assert abs(lag1(1)) < 0.02


def test_to_dict_is_json_ready_with_percentile_keys():
    r = np.random.default_rng(0).normal(0, 0.01, (50, 2))
    res = simulate(
        returns=r,
        weights=[0.5, 0.2],
        value0=100,
        paths=30,
        horizon=5,
        mean_block=2,
        seed=0,
        drawdown_limit=-0.02,
        fan_quantiles=(0.1, 0.5, 0.9),
    )
    d = json.loads(json.dumps(res.to_dict()))
    assert set(d["terminal_value"]) == {"p5", "p50", "p95"} == set(d["max_drawdown"])
    assert set(d["fan"]) == {"p10", "p50", "p90"} and len(d["fan"]["p50"]) == 6
    assert d["fan"]["p50"][0] == 100.0
    assert d["terminal_value"]["p50"] == res.terminal_quantiles[0.5]
    assert len(d["strategy_growth"]["p95"]) == 2
    assert d["p_breach_drawdown"] == res.p_breach_drawdown


_GOOD = {
    "returns": np.zeros((5, 2)),
    "weights": [0.5, 0.5],
    "value0": 1.0,
    "paths": 10,
    "horizon": 5,
    "mean_block": 2,
    "seed": 0,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": [0.5, 0.3, 0.2]}, "weights has shape"),
        ({"returns": np.zeros(5)}, "must be 2-D"),
        ({"returns": np.zeros((1, 2))}, "at least 2 rows"),
        ({"returns": np.array([[0.0, 0.0], [np.nan, 0.0]])}, r"NaN or infinite value \(row 1"),
        ({"weights": [np.inf, 0.0]}, "weights must be finite"),
        ({"paths": 0}, "paths must be >= 1"),
        ({"horizon": 0}, "horizon must be >= 1"),
        ({"mean_block": 0.5}, "mean_block must be"),
        ({"seed": None}, "seed must be an integer"),
        ({"value0": 0}, "value0 must be a positive"),
        ({"drawdown_limit": 0.15}, "drawdown_limit is a negative fraction"),
        ({"start_drawdown": 0.1}, "start_drawdown must be"),
        ({"fan_quantiles": (0.5, 1.5)}, "fan_quantiles"),
        ({"returns": np.array([[0.0, 0.0], [-1.0, 0.0]])}, "<= -100 %"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(change, message):
    with pytest.raises(ValueError, match=message):
        simulate(**(_GOOD | change))
