"""Portfolio risk from the strategies' daily returns and current weights (pure numpy).

Shapes and units. ``returns``: (T, k) daily simple returns of k strategy books, oldest
first, a DataFrame (DatetimeIndex x strategy names) or a 2-D ndarray. ``weights``: shape
(k,), each strategy's equity as a fraction of portfolio equity (array in column order, or
a Series/mapping keyed by the frame's column names); a remainder not held by any strategy
(portfolio cash) earns zero. ``S`` is the SAMPLE covariance (ddof=1) of the daily returns,
annualized as ``252 * S``.

* portfolio volatility = ``sqrt(252 * w' S w)`` (= annualized std of ``R w``);
* diversification ratio (Choueifaty) = ``(|w| . sigma) / sqrt(w' S w)``, >= 1 for
  long-only weights, with sigma_i the strategies' vols;
* marginal contribution_i = ``(S w)_i / sqrt(w' S w)``, absolute (risk) contribution_i
  = ``w_i (S w)_i / sqrt(w' S w)`` (they sum to the portfolio vol), percent
  contribution_i = absolute_i / vol (sums to 1); marginal and absolute are annualized;
* ``portfolio_risk`` bundles these with correlation, Sharpe, drawdown and VaR/CVaR of
  the current-weights portfolio ``R w`` over a trailing window: one call per bar.

Degenerate cases: fewer than 2 observations -> NaN everywhere (no exception). Zero
portfolio vol (``vol <= 1e-12 * (|w| . sigma)``, e.g. no weights, flat strategies or a
perfect hedge) -> vol 0.0, and the diversification ratio and all contributions NaN. A
strategy with zero vol has NaN correlations (as pandas' ``corr``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from risk.engine.metrics import (
    SQRT_TRADING_DAYS,
    TRADING_DAYS,
    drawdown_series,
    sharpe_ratio,
)
from risk.engine.var import correlated_var, empirical_tail, linear_quantile, normal_tail

# Below this ratio of portfolio vol to undiversified vol the portfolio is riskless: a
# ratio or a share of floating-point residue would be meaningless.
ZERO_VOL_RATIO = 1e-12


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def aligned_inputs(
    returns: pd.DataFrame | ArrayLike, weights: ArrayLike | Mapping[str, float] | pd.Series
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(R, w, names)``: returns as a (T, k) float array, weights as (k,) in the same
    column order, strategy names (``"0".."k-1"`` for an ndarray). Weights keyed by name
    are aligned to the frame's columns; a missing or extra name raises ValueError."""
    if isinstance(returns, pd.DataFrame):
        names = tuple(str(c) for c in returns.columns)
        r = returns.to_numpy(dtype=float, copy=False)
    else:
        r = np.asarray(returns, dtype=float)
        names = tuple(str(i) for i in range(r.shape[1])) if r.ndim == 2 else ()
    if r.ndim != 2:
        raise ValueError(f"returns must be two-dimensional (T, k), got shape {r.shape}")
    if isinstance(weights, Mapping | pd.Series):
        keyed = {str(k): float(v) for k, v in weights.items()}
        if set(keyed) != set(names):
            raise ValueError(f"weights keys {sorted(keyed)} != strategies {sorted(names)}")
        w = np.array([keyed[n] for n in names])
    else:
        w = np.asarray(weights, dtype=float)
    if w.shape != (r.shape[1],):
        raise ValueError(f"weights shape {w.shape} does not match {r.shape[1]} strategies")
    return r, w, names


def sample_covariance(returns: ArrayLike) -> np.ndarray:
    """Daily sample covariance ``S`` (ddof=1) of (T, k) returns, shape (k, k); all NaN if
    T < 2."""
    r = np.asarray(returns, dtype=float)
    if r.shape[0] < 2:
        return np.full((r.shape[1], r.shape[1]), np.nan)
    d = r - r.mean(axis=0)
    return (d.T @ d) / (r.shape[0] - 1)


def _vol_from_cov(cov: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, float]:
    """(annualized portfolio vol, annualized S w, undiversified vol |w| . sigma)."""
    cov_w = TRADING_DAYS * (cov @ w)
    sigma = np.sqrt(np.maximum(TRADING_DAYS * np.diag(cov), 0.0))
    undiversified = float(np.abs(w) @ sigma)
    var = float(w @ cov_w)
    if math.isnan(var) or math.isnan(undiversified):
        return math.nan, cov_w, undiversified
    vol = math.sqrt(max(var, 0.0))
    return (0.0 if vol <= ZERO_VOL_RATIO * undiversified else vol), cov_w, undiversified


def portfolio_volatility(
    returns: pd.DataFrame | ArrayLike, weights: ArrayLike | Mapping[str, float]
) -> float:
    """Annualized portfolio volatility ``sqrt(252 * w' S w)``, S the daily sample
    covariance (ddof=1) of the strategies' returns. NaN if T < 2; 0.0 when riskless."""
    r, w, _ = aligned_inputs(returns, weights)
    return _vol_from_cov(sample_covariance(r), w)[0]


def correlation_matrix(returns: pd.DataFrame) -> pd.DataFrame:
    """Strategy correlation matrix ``S_ij / (sigma_i sigma_j)`` of the daily returns, a
    (k, k) DataFrame labelled by strategy; NaN rows/columns for a zero-vol strategy (and
    all NaN if T < 2)."""
    r, _, names = aligned_inputs(returns, np.zeros(returns.shape[1]))
    return pd.DataFrame(_correlation(sample_covariance(r)), index=names, columns=names)


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = np.nan
    np.fill_diagonal(corr, np.where(sd > 0, 1.0, np.nan))
    return corr


def diversification_ratio(
    returns: pd.DataFrame | ArrayLike, weights: ArrayLike | Mapping[str, float]
) -> float:
    """Choueifaty's diversification ratio ``(|w| . sigma) / sqrt(w' S w)``: the weighted
    average of the strategies' vols over the portfolio vol (annualization cancels).
    >= 1 for long-only weights; 1 when all strategies are perfectly correlated. NaN if
    T < 2 or the portfolio vol is zero."""
    r, w, _ = aligned_inputs(returns, weights)
    vol, _, undiversified = _vol_from_cov(sample_covariance(r), w)
    return undiversified / vol if vol > 0 else math.nan


@dataclass(frozen=True, eq=False)
class RiskContributions:
    """Per-strategy contributions to annualized portfolio vol, arrays of shape (k,)."""

    marginal: np.ndarray  # d vol / d w_i = (S w)_i / sqrt(w' S w)
    absolute: np.ndarray  # w_i * marginal_i; sums to portfolio vol
    percent: np.ndarray  # absolute_i / vol; sums to 1


def _contributions_from(cov_w: np.ndarray, w: np.ndarray, vol: float) -> RiskContributions:
    if not vol > 0:
        nan = np.full(w.size, np.nan)
        return RiskContributions(_frozen(nan), _frozen(nan.copy()), _frozen(nan.copy()))
    marginal = cov_w / vol
    absolute = w * marginal
    return RiskContributions(_frozen(marginal), _frozen(absolute), _frozen(absolute / vol))


def risk_contributions(
    returns: pd.DataFrame | ArrayLike, weights: ArrayLike | Mapping[str, float]
) -> RiskContributions:
    """Marginal ``(S w)_i / sqrt(w'Sw)``, absolute ``w_i (S w)_i / sqrt(w'Sw)`` and
    percent ``absolute_i / vol`` contributions of each strategy to the annualized
    portfolio vol (S annualized). All NaN if T < 2 or the portfolio vol is zero."""
    r, w, _ = aligned_inputs(returns, weights)
    vol, cov_w, _ = _vol_from_cov(sample_covariance(r), w)
    return _contributions_from(cov_w, w, vol)


@dataclass(frozen=True)
class TailRisk:
    """One-day tail risk of the current-weights portfolio at one confidence, positive
    loss fractions of portfolio equity (see ``risk.engine.var`` for each formula)."""

    confidence: float
    historical_var: float
    historical_cvar: float
    parametric_var: float
    parametric_cvar: float
    correlated_var: float  # sqrt(v' C v), v_i = w_i * historical VaR_i of strategy i


@dataclass(frozen=True, eq=False)
class PortfolioRisk:
    """Everything ``portfolio_risk`` measures at one bar (arrays in ``strategies`` order).

    ``sharpe``, ``drawdown`` and ``max_drawdown`` are of the current-weights portfolio
    ``R w`` over the trailing window, an ex-ante profile: the book's realized drawdown
    from its all-time peak is tracked by the caller (``portfolio.engine.cycle``)."""

    strategies: tuple[str, ...]
    weights: np.ndarray
    observations: int  # rows of the trailing window actually used
    volatility: float  # annualized
    strategy_volatilities: np.ndarray  # annualized, shape (k,)
    correlation: np.ndarray  # (k, k)
    max_correlation: float  # largest finite off-diagonal correlation; NaN if none
    diversification_ratio: float
    contributions: RiskContributions
    sharpe: float  # annualized, with the given annual risk-free rate
    drawdown: float  # at the last row of the window, <= 0
    max_drawdown: float  # over the window, <= 0
    tail_95: TailRisk
    tail_99: TailRisk

    @cached_property
    def correlation_frame(self) -> pd.DataFrame:
        """The correlation matrix as a DataFrame labelled by strategy."""
        return pd.DataFrame(self.correlation, index=self.strategies, columns=self.strategies)


def _tail_risk(rp, moments, sorted_window, w, corr, confidence: float) -> TailRisk:
    """TailRisk from portfolio returns ``rp`` (T,), their (mean, sample std), and the
    strategy returns sorted along time, (T, k)."""
    if rp.size < 2:
        return TailRisk(confidence, *([math.nan] * 5))
    hist_var, hist_cvar = empirical_tail(rp, confidence)
    norm_var, norm_cvar = normal_tail(*moments, confidence)
    strategy_vars = -linear_quantile(sorted_window, 1.0 - confidence)
    return TailRisk(
        confidence=confidence,
        historical_var=hist_var,
        historical_cvar=hist_cvar,
        parametric_var=norm_var,
        parametric_cvar=norm_cvar,
        correlated_var=correlated_var(strategy_vars, w, corr),
    )


def most_correlated_pair(corr: np.ndarray) -> tuple[int, int] | None:
    """Indices ``(i, j)``, ``i < j``, of the largest finite off-diagonal correlation (the
    first such pair in row order on a tie), or None when there is none. Zero-vol (e.g.
    still all-cash) strategies have NaN correlations and are skipped."""
    rows, cols = np.triu_indices(corr.shape[0], 1)
    values = corr[rows, cols]
    finite = np.flatnonzero(np.isfinite(values))
    if not finite.size:
        return None
    best = finite[np.argmax(values[finite])]
    return int(rows[best]), int(cols[best])


def _max_off_diagonal(corr: np.ndarray) -> float:
    pair = most_correlated_pair(corr)
    return math.nan if pair is None else float(corr[pair])


def portfolio_risk(
    returns: pd.DataFrame | np.ndarray,
    weights: ArrayLike | Mapping[str, float],
    *,
    lookback_days: int = 252,
    risk_free: float = 0.0,
) -> PortfolioRisk:
    """All portfolio-level risk numbers at the last row of ``returns``, from its trailing
    ``lookback_days`` rows (fewer if the history is shorter) and the current ``weights``.

    Meant for one call per bar: pass the history up to the bar (a DataFrame, or for a long
    replay an ndarray slice view ``R[: t + 1]``, which skips pandas). Only the trailing
    window is touched. ``risk_free``: annual fraction for the Sharpe ratio. Raises
    ValueError for non-finite returns in the window or misaligned weights; fewer than 2
    rows gives NaN numbers. See the module docstring for every formula."""
    if lookback_days < 2:
        raise ValueError(f"lookback_days must be >= 2, got {lookback_days}")
    r, w, names = aligned_inputs(returns, weights)
    window = r[-lookback_days:]
    if not np.isfinite(window).all():
        raise ValueError("returns in the lookback window must be finite (fill or drop NaN)")
    cov = sample_covariance(window)
    vol, cov_w, undiversified = _vol_from_cov(cov, w)
    corr = _correlation(cov)
    rp = window @ w
    dd = drawdown_series(rp)
    moments = (float(rp.mean()), float(rp.std(ddof=1))) if rp.size >= 2 else (math.nan,) * 2
    sorted_window = np.sort(window, axis=0)
    return PortfolioRisk(
        strategies=names,
        weights=_frozen(w.copy()),
        observations=int(window.shape[0]),
        volatility=vol,
        strategy_volatilities=_frozen(np.sqrt(np.diag(cov)) * SQRT_TRADING_DAYS),
        correlation=_frozen(corr),
        max_correlation=_max_off_diagonal(corr),
        diversification_ratio=undiversified / vol if vol > 0 else math.nan,
        contributions=_contributions_from(cov_w, w, vol),
        sharpe=sharpe_ratio(rp, risk_free),
        drawdown=float(dd[-1]) if dd.size else math.nan,
        max_drawdown=float(dd.min()) if dd.size else math.nan,
        tail_95=_tail_risk(rp, moments, sorted_window, w, corr, 0.95),
        tail_99=_tail_risk(rp, moments, sorted_window, w, corr, 0.99),
    )
