"""Value-at-Risk and Expected Shortfall (CVaR) of daily returns (pure numpy/scipy).

Convention: VaR and CVaR are POSITIVE loss fractions of equity over one day at the stated
``confidence`` (0.95 or 0.99; 0.02 = a 2 % loss). A negative value means even the tail
day is a gain. ``returns``: 1-D array-like of daily simple returns, shape (n,). With
n < 2 every estimate is NaN. NaN inside ``returns`` propagates.

* historical VaR = ``-quantile(r, 1 - confidence)``, numpy's default linear
  interpolation between order statistics (empyrical's ``value_at_risk``, negated);
* historical CVaR = ``-mean(r[r <= quantile(r, 1 - confidence)])``, the mean of the
  returns at or below the VaR quantile (DESIGN.md); ties are all in (``historical_cvar``);
* parametric (normal) VaR = ``-(mean + z * std)`` with ``z = Phi^-1(1 - confidence)``;
* parametric CVaR = ``-(mean - std * phi(z) / (1 - confidence))``, the mean of a normal
  below its (1 - confidence)-quantile;
  mean and std (ddof=1) are of the same daily returns;
* ``correlated_var`` aggregates per-strategy VaRs with their correlation matrix.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtri

from risk.engine.metrics import as_returns

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _tail_probability(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
    return 1.0 - confidence


def normal_quantile(probability: float) -> float:
    """``Phi^-1(probability)``, the standard normal quantile (``scipy.stats.norm.ppf``,
    computed with ``scipy.special.ndtri``, which is ~50x faster per call)."""
    return float(ndtri(probability))


def linear_quantile(sorted_returns: np.ndarray, probability: float) -> float | np.ndarray:
    """Quantile of data already sorted ascending along axis 0, by linear interpolation
    between order statistics: ``h = (n - 1) * p``, ``x[floor(h)] + (h - floor(h)) *
    (x[floor(h) + 1] - x[floor(h)])``. Bit-for-bit ``np.quantile``'s default method
    (including its two-sided lerp), without its per-call overhead; shape (n,) gives a
    float, (n, k) an array (k,). ``n`` must be >= 1."""
    n = sorted_returns.shape[0]
    h = (n - 1) * probability
    lo = min(max(math.floor(h), 0), n - 1)
    hi = min(lo + 1, n - 1)
    t = h - lo
    a, b = sorted_returns[lo], sorted_returns[hi]
    diff = b - a
    # numpy interpolates from the nearer end, so p = 1 - eps stays close to the top value.
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t


def empirical_tail(returns: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """``(historical VaR, historical CVaR)`` at ``confidence`` from one quantile:
    ``q = quantile(r, 1 - confidence)`` (numpy's linear interpolation), VaR = ``-q``,
    CVaR = ``-mean(r[r <= q])``. NaN for both if n < 2 or any return is NaN."""
    alpha = _tail_probability(confidence)
    x = np.sort(as_returns(returns))
    if x.size < 2 or math.isnan(x[-1]):  # NaN sorts last
        return math.nan, math.nan
    q = float(linear_quantile(x, alpha))
    tail = x[: np.searchsorted(x, q, side="right")]
    return -q, -float(tail.mean())


def historical_var(returns: ArrayLike, confidence: float = 0.95) -> float:
    """Historical VaR ``-quantile(r, 1 - confidence)`` (numpy's linear interpolation), a
    positive loss fraction. NaN if n < 2."""
    return empirical_tail(returns, confidence)[0]


def historical_cvar(returns: ArrayLike, confidence: float = 0.95) -> float:
    """Historical CVaR (expected shortfall) ``-mean(r[r <= q])`` with
    ``q = quantile(r, 1 - confidence)`` (linear interpolation): the average loss on the
    days at or beyond the historical VaR, so >= historical VaR. NaN if n < 2.

    Ties: every return equal to ``q`` is in the mean, however many there are (the tail is
    a set of days, not a fixed count). This is the mean of the returns <= the cutoff
    ``np.percentile(r, 100 * (1 - confidence))`` computes. empyrical-reloaded's
    ``conditional_value_at_risk`` (0.7.1) instead averages the ``k + 1`` smallest returns,
    ``k = int((n - 1) * (1 - confidence))`` (``np.partition``): the same days when
    ``x_k < x_k+1``, but when returns tie at the cut it keeps only the tied copies up to
    ``x_k``, so with ties its CVaR is >= ours (it leaves out returns equal to ``q``, which
    are above the mean of the rest of the tail)."""
    return empirical_tail(returns, confidence)[1]


def normal_tail(mean: float, std: float, confidence: float = 0.95) -> tuple[float, float]:
    """``(parametric VaR, parametric CVaR)`` of a normal with daily ``mean`` and ``std``:
    VaR = ``-(mean + z * std)``, CVaR = ``-(mean - std * phi(z) / (1 - confidence))``,
    ``z = Phi^-1(1 - confidence)`` (negative), ``phi`` the standard normal density."""
    alpha = _tail_probability(confidence)
    z = normal_quantile(alpha)
    density = _INV_SQRT_2PI * math.exp(-0.5 * z * z)
    return -(mean + z * std), -(mean - std * density / alpha)


def _sample_moments(returns: ArrayLike) -> tuple[float, float]:
    r = as_returns(returns)
    if r.size < 2:
        return math.nan, math.nan
    return float(r.mean()), float(r.std(ddof=1))


def parametric_var(returns: ArrayLike, confidence: float = 0.95) -> float:
    """Normal (variance-covariance) VaR ``-(mean + z * std)``, ``z = Phi^-1(1 -
    confidence)``, mean and sample std (ddof=1) of the daily returns. NaN if n < 2."""
    return normal_tail(*_sample_moments(returns), confidence)[0]


def parametric_cvar(returns: ArrayLike, confidence: float = 0.95) -> float:
    """Normal CVaR ``-(mean - std * phi(z) / (1 - confidence))``, ``z = Phi^-1(1 -
    confidence)``; mean and sample std (ddof=1) of the daily returns. >= parametric VaR.
    NaN if n < 2."""
    return normal_tail(*_sample_moments(returns), confidence)[1]


def correlated_var(strategy_vars: ArrayLike, weights: ArrayLike, correlation: ArrayLike) -> float:
    """Portfolio VaR aggregated from strategy VaRs: ``sqrt(v' C v)`` with
    ``v_i = w_i * VaR_i``.

    ``strategy_vars``: shape (k,), each strategy's VaR as a loss fraction of ITS equity;
    ``weights``: shape (k,), strategy equity / portfolio equity; ``correlation``: (k, k)
    correlation matrix of the strategies' daily returns. Result: a loss fraction of
    portfolio equity. This is exact only when returns are jointly normal with zero mean
    (then VaR_i = -z * sigma_i and the formula is ``-z * sqrt(w' S w)``); with historical
    VaRs or non-zero means it is the usual square-root-of-sum approximation. Strategies
    with ``v_i = 0`` are left out (their correlations may be NaN); NaN in the rest gives
    NaN."""
    v = np.asarray(weights, dtype=float) * np.asarray(strategy_vars, dtype=float)
    c = np.asarray(correlation, dtype=float)
    if v.ndim != 1 or c.shape != (v.size, v.size):
        raise ValueError(f"shapes do not align: v {v.shape}, correlation {c.shape}")
    # A strategy with v_i = 0 (no weight, or a flat book whose correlations are NaN)
    # adds nothing, whatever its correlations.
    held = v != 0.0
    if not held.all():
        v, c = v[held], c[np.ix_(held, held)]
    quad = float(v @ c @ v)
    if math.isnan(quad):
        return math.nan
    # A valid correlation matrix is positive semi-definite; clip rounding just below 0.
    return math.sqrt(max(quad, 0.0))
