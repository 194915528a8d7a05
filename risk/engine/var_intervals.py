"""Confidence intervals for the historical VaR and CVaR of a return window (pure numpy/scipy).

Shapes and units. ``returns``: 1-D array-like of n daily simple returns (the window the
point estimate was computed from, ``risk.engine.var``'s conventions: VaR and CVaR are
POSITIVE loss fractions of equity over one day). ``confidence`` is the VaR's (0.95, 0.99);
``coverage`` the interval's (default ``INTERVAL_COVERAGE``, 90 %). Results are fractions.

Method, and why.

* **VaR: the order-statistic (binomial) interval** for the ``p = 1 - confidence``
  quantile. With ``x_(1) <= ... <= x_(n)`` the sorted returns and ``B ~ Binomial(n, p)``
  the number of returns below the true quantile ``q``, ``P(x_(l) <= q <= x_(u)) =
  P(l <= B <= u - 1)`` for any continuous distribution. ``l`` is the largest index with
  ``P(B <= l - 1) <= (1 - coverage) / 2`` and ``u`` the smallest with ``P(B >= u) <=
  (1 - coverage) / 2``; the VaR interval is ``[-x_(u), -x_(l)]``. It is exact,
  distribution-free, deterministic (no resampling, so the page never moves between
  reloads) and cheap. It is also honest about short windows: when even ``l = 1`` leaves
  more than ``(1 - coverage) / 2`` of probability below the worst day (``(1 - p)^n >
  (1 - coverage) / 2``, e.g. 60 days at 99 %), the loss end is unbounded (``inf``): the
  window cannot say how bad the quantile could be. ``achieved`` is the interval's actual
  coverage ``P(l <= B <= u - 1)`` (>= ``coverage`` when both ends are bounded).
* **CVaR: a seeded ordinary bootstrap**, percentile interval. No distribution-free exact
  interval exists for a tail mean, so the window is resampled with replacement
  ``resamples`` times with ``np.random.default_rng(seed)`` (fixed seed: the same window
  always gives the same interval), the historical CVaR of each resample taken (the
  formula of ``risk.engine.var.empirical_tail``, vectorized over resamples), and the
  ``(1 - coverage) / 2`` and ``(1 + coverage) / 2`` quantiles of those reported. A
  bootstrap cannot see a loss worse than the worst day in the window, so it understates
  the loss end for a short window; CVaR >= VaR, so the CVaR interval's loss end is
  raised to the VaR interval's when that is larger (``inf`` when the VaR's is unbounded).
  Daily returns are treated as exchangeable (no block bootstrap): their autocorrelation
  is small next to the sampling error of a 60-day tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binom

from risk.engine.metrics import as_returns
from risk.engine.var import empirical_tail, linear_quantile

INTERVAL_COVERAGE = 0.90
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 14


@dataclass(frozen=True)
class Interval:
    """``[low, high]`` as positive loss fractions; ``high`` may be ``inf`` (unbounded)."""

    low: float
    high: float
    achieved: float  # the interval's actual coverage (order statistics) or the nominal one


@dataclass(frozen=True)
class TailInterval:
    """Historical VaR and CVaR at one confidence with their intervals."""

    confidence: float
    observations: int
    var: float
    cvar: float
    var_interval: Interval
    cvar_interval: Interval


def _order_indices(n: int, p: float, coverage: float) -> tuple[int, int]:
    """1-based ``(l, u)`` of the module docstring; ``l = 0`` for an unbounded lower
    (loss) end, ``u = n + 1`` for an unbounded upper end."""
    half = (1.0 - coverage) / 2.0
    j = np.arange(0, n + 2)
    below = binom.cdf(j - 1, n, p)  # P(B <= j - 1)
    l_candidates = j[(j >= 1) & (j <= n) & (below <= half)]
    lo = int(l_candidates.max()) if l_candidates.size else 0
    above = binom.sf(j - 1, n, p)  # P(B >= j)
    u_candidates = j[(j >= 1) & (j <= n) & (above <= half)]
    hi = int(u_candidates.min()) if u_candidates.size else n + 1
    return lo, hi


def var_interval(
    returns: ArrayLike, confidence: float = 0.95, coverage: float = INTERVAL_COVERAGE
) -> Interval:
    """Order-statistic interval ``[-x_(u), -x_(l)]`` for the historical VaR at
    ``confidence`` (module docstring); ``inf`` / ``-inf`` for an unbounded end; NaN ends
    if n < 2 or a return is NaN."""
    x = np.sort(as_returns(returns))
    n = x.size
    if n < 2 or math.isnan(x[-1]):
        return Interval(math.nan, math.nan, math.nan)
    p = 1.0 - confidence
    lo, hi = _order_indices(n, p, coverage)
    achieved = float(binom.cdf(hi - 1, n, p) - binom.cdf(lo - 1, n, p))
    loss_high = math.inf if lo == 0 else -float(x[lo - 1])
    loss_low = -math.inf if hi > n else -float(x[hi - 1])
    return Interval(loss_low + 0.0, loss_high + 0.0, achieved)


def cvar_bootstrap_interval(
    returns: ArrayLike,
    confidence: float = 0.95,
    coverage: float = INTERVAL_COVERAGE,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    rng: np.random.Generator | None = None,
) -> Interval:
    """Percentile bootstrap interval of the historical CVaR at ``confidence`` (module
    docstring); ``rng`` defaults to ``np.random.default_rng(BOOTSTRAP_SEED)``. NaN ends if
    n < 2 or a return is NaN."""
    x = as_returns(returns)
    if x.size < 2 or not np.isfinite(x).all():
        return Interval(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(BOOTSTRAP_SEED) if rng is None else rng
    draws = np.sort(x[rng.integers(0, x.size, size=(resamples, x.size))], axis=1)
    q = linear_quantile(draws.T, 1.0 - confidence)  # (resamples,)
    tail = draws <= q[:, None]
    cvars = -(np.where(tail, draws, 0.0).sum(axis=1) / tail.sum(axis=1))
    low, high = np.quantile(cvars, [(1.0 - coverage) / 2.0, (1.0 + coverage) / 2.0])
    return Interval(float(low) + 0.0, float(high) + 0.0, coverage)


def tail_intervals(
    returns: ArrayLike,
    confidences: tuple[float, ...] = (0.95, 0.99),
    coverage: float = INTERVAL_COVERAGE,
    *,
    seed: int = BOOTSTRAP_SEED,
) -> list[TailInterval]:
    """Historical VaR and CVaR (``empirical_tail``) with their intervals, one per
    confidence; each confidence's bootstrap starts from ``seed``, so a confidence's
    interval does not depend on which others are asked for."""
    x = as_returns(returns)
    out = []
    for c in confidences:
        var, cvar = empirical_tail(x, c)
        vi = var_interval(x, c, coverage)
        ci = cvar_bootstrap_interval(x, c, coverage, rng=np.random.default_rng(seed))
        if not math.isnan(vi.high) and vi.high > ci.high:
            ci = Interval(ci.low, vi.high, ci.achieved)
        out.append(TailInterval(c, int(x.size), var, cvar, vi, ci))
    return out
