"""VaR / CVaR confidence intervals (risk.engine.var_intervals) on hand-checked windows."""

from __future__ import annotations

import math

import numpy as np

from risk.engine.var import empirical_tail
from risk.engine.var_intervals import (
    cvar_bootstrap_interval,
    tail_intervals,
    var_interval,
)

# 60 returns whose sorted values are x_(j) = j/1000 - 0.05, shuffled.
WINDOW = np.random.default_rng(0).permutation(np.arange(1, 61) / 1000 - 0.05)


def _binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def test_the_var_interval_is_the_binomial_order_statistic_interval():
    # n = 60, p = 0.05, 90 % two-sided: P(B <= 0) = 0.95^60 = 0.046 <= 0.05 < P(B <= 1)
    # = 0.192, so l = 1 (the worst day); P(B >= 7) = 0.030 <= 0.05 < P(B >= 6) = 0.083,
    # so u = 7. VaR interval [-x_(7), -x_(1)] = [0.043, 0.049].
    assert _binom_cdf(0, 60, 0.05) <= 0.05 < _binom_cdf(1, 60, 0.05)
    assert 1 - _binom_cdf(6, 60, 0.05) <= 0.05 < 1 - _binom_cdf(5, 60, 0.05)
    iv = var_interval(WINDOW, 0.95, 0.90)
    np.testing.assert_allclose([iv.low, iv.high], [0.05 - 0.007, 0.05 - 0.001])
    achieved = _binom_cdf(6, 60, 0.05) - _binom_cdf(0, 60, 0.05)  # P(1 <= B <= 6)
    np.testing.assert_allclose(iv.achieved, achieved)
    assert iv.achieved >= 0.90
    var = empirical_tail(WINDOW, 0.95)[0]
    assert iv.low <= var <= iv.high


def test_sixty_days_cannot_bound_the_99_percent_var_from_above():
    # P(B = 0) = 0.99^60 = 0.547 > 0.05: even the worst day may sit above the 1 % quantile.
    # Upper index: P(B >= 3) = 0.022 <= 0.05 < P(B >= 2) = 0.121, so u = 3: low = -x_(3).
    iv = var_interval(WINDOW, 0.99, 0.90)
    assert iv.high == math.inf
    np.testing.assert_allclose(iv.low, 0.05 - 0.003)


def test_the_order_statistic_interval_covers_the_true_quantile_as_often_as_it_says():
    rng = np.random.default_rng(7)
    true_var = 1.6448536269514722  # -Phi^-1(0.05) of a standard normal
    hits = 0
    for _ in range(400):
        iv = var_interval(rng.standard_normal(250), 0.95, 0.90)
        hits += iv.low <= true_var <= iv.high
    assert 0.86 <= hits / 400 <= 0.99  # nominal 0.90, exact coverage ~0.91 at n = 250


def test_the_cvar_bootstrap_is_seeded_and_brackets_the_estimate():
    a = cvar_bootstrap_interval(WINDOW, 0.95, 0.90)
    b = cvar_bootstrap_interval(WINDOW, 0.95, 0.90)
    assert (a.low, a.high) == (b.low, b.high)  # same window, same interval
    cvar = empirical_tail(WINDOW, 0.95)[1]  # mean of x_(1..3) = 0.048 loss
    np.testing.assert_allclose(cvar, 0.048)
    assert a.low <= cvar <= a.high <= 0.049 + 1e-12  # cannot exceed the worst day


def test_tail_intervals_raise_the_cvar_loss_end_to_the_vars():
    out = {t.confidence: t for t in tail_intervals(WINDOW)}
    assert out[0.99].var_interval.high == math.inf
    assert out[0.99].cvar_interval.high == math.inf  # CVaR >= VaR, unbounded too
    np.testing.assert_allclose(out[0.95].var, empirical_tail(WINDOW, 0.95)[0])
    assert out[0.95].observations == 60


def test_short_or_missing_windows_give_nan():
    assert math.isnan(var_interval([0.01], 0.95).low)
    assert math.isnan(cvar_bootstrap_interval([0.01, math.nan], 0.95).high)
