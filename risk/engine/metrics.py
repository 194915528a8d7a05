"""Risk metrics of one return series and of closed trades (pure numpy/pandas).

Shapes and units. ``returns`` is a 1-D array-like (ndarray or Series) of daily simple
returns as fractions (0.01 = +1 %), oldest first. Annualized figures use 252 trading days
a year and the sample standard deviation (ddof=1). ``risk_free`` is an ANNUAL rate as a
fraction (0.02 = 2 %), converted to a daily rate arithmetically as ``risk_free / 252``
(quantstats converts geometrically, ``(1 + rf)**(1/252) - 1``; empyrical takes the daily
rate directly). Drawdowns are negative fractions of the running peak of the compounded
NAV, whose peak starts at the initial 1.0, so a loss on the first day is a drawdown.

This module is the one definition of every single-series metric the site shows (risk
manager, risk page, performance and strategy pages, exports, the static report):
``reporting.engine.performance`` imports these and adds only what is its own (annual
return, Calmar, moments, drawdown periods, calendar and trade tables).

Degenerate inputs give NaN, never an exception: a statistic that needs a dispersion (vol,
Sharpe, Sortino) is NaN with fewer than 2 observations, and Sharpe is NaN when the excess
returns do not vary (empyrical returns +-inf there; a ratio over zero dispersion is
undefined, not infinitely good). Sortino follows empyrical: +inf for a positive mean
excess with no day below the target, NaN for 0 / 0. NaN inside ``returns`` is not
dropped: it propagates, so a missing day is the caller's to fill or drop.

Elsewhere: VaR/CVaR in ``risk.engine.var``; covariance-based portfolio metrics
(portfolio vol, correlation, diversification ratio, risk contributions, the per-bar
``portfolio_risk`` snapshot) in ``risk.engine.portfolio_risk``; leverage, position counts,
netting and concentration in ``risk.engine.exposure``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

TRADING_DAYS = 252
SQRT_TRADING_DAYS = math.sqrt(TRADING_DAYS)
ROLLING_VOL_WINDOWS = (30, 60, 90)  # the spec's rolling volatility windows, trading days


def as_returns(returns: ArrayLike) -> np.ndarray:
    """``returns`` as a 1-D float64 ndarray (a view when possible); raises ValueError if it
    is not one-dimensional."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {r.shape}")
    return r


def daily_risk_free(risk_free: float) -> float:
    """The daily rate for an annual ``risk_free`` fraction: ``risk_free / 252``
    (arithmetic de-annualization, the convention of every ratio in this package)."""
    return risk_free / TRADING_DAYS


def _is_constant(x: np.ndarray) -> bool:
    # A sample std of identical values is mathematically 0 but can come out as ~1e-18,
    # which would turn an undefined ratio into a huge finite one (empyrical tests the same).
    return bool(x.max() == x.min())


def annual_volatility(returns: ArrayLike) -> float:
    """Annualized volatility ``std(r, ddof=1) * sqrt(252)``.

    ``returns``: daily simple returns, shape (n,). NaN if n < 2; exactly 0.0 if all
    returns are equal."""
    r = as_returns(returns)
    if r.size < 2:
        return math.nan
    if _is_constant(r):
        return 0.0
    return float(r.std(ddof=1)) * SQRT_TRADING_DAYS


def _checked_window(window: int) -> int:
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an integer >= 2 trading days, got {window!r}")
    return window


def rolling_volatility(returns: pd.Series | pd.DataFrame, window: int):
    """Rolling annualized volatility: at row t, ``std(r[t-window+1 .. t], ddof=1) *
    sqrt(252)``.

    ``returns``: Series, or DataFrame (dates x strategies), of daily simple returns;
    ``window``: trading days (an integer >= 2), e.g. one of ``ROLLING_VOL_WINDOWS``.
    Returns the same type on the same index (and columns), NaN for the first
    ``window - 1`` rows and wherever the window holds a NaN (a strategy not started yet).
    Computed on explicit windows, not with a running sum, so it matches
    ``annual_volatility`` of the same slice exactly."""
    _checked_window(window)
    values = returns.to_numpy(dtype=float)
    out = np.full(values.shape, np.nan)
    if values.shape[0] >= window:
        windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)
        out[window - 1 :] = windows.std(axis=-1, ddof=1) * SQRT_TRADING_DAYS
    if isinstance(returns, pd.DataFrame):
        return pd.DataFrame(out, index=returns.index, columns=returns.columns)
    return pd.Series(out, index=returns.index, name=returns.name)


def drawdown_series(
    returns: ArrayLike | None = None, *, equity: ArrayLike | None = None
) -> np.ndarray | pd.Series:
    """Drawdown at each day ``dd_t = E_t / max_{s<=t} E_s - 1`` (<= 0, a negative fraction
    of the running peak).

    Pass exactly one of ``returns`` (daily simple returns; ``E_t = prod(1 + r_0 .. r_t)``
    with the peak starting at the initial 1.0, as in empyrical and skfolio, so a loss on
    the first day is a drawdown) or ``equity=`` (positive account values; the first value
    is the first peak). Same length as the input; a Series in gives a Series named
    "drawdown" out on the same index."""
    if (returns is None) == (equity is None):
        raise ValueError("pass exactly one of returns or equity=")
    source = returns if equity is None else equity
    if equity is None:
        r = as_returns(returns)
        nav = np.cumprod(1.0 + r)
        peak = np.maximum(np.maximum.accumulate(nav), 1.0) if r.size else nav
    else:
        nav = as_returns(equity)
        if not (nav > 0).all():
            raise ValueError("equity must be positive values")
        peak = np.maximum.accumulate(nav)
    dd = nav / peak - 1.0
    if isinstance(source, pd.Series):
        return pd.Series(dd, index=source.index, name="drawdown")
    return dd


def max_drawdown(returns: ArrayLike) -> float:
    """Maximum drawdown ``min_t drawdown_series(r)_t``: a fraction <= 0 (-0.25 = the NAV
    fell 25 % below its peak; 0.0 if never under water). NaN for an empty series."""
    r = as_returns(returns)
    if r.size == 0:
        return math.nan
    return float(np.min(drawdown_series(r)))


def sharpe_ratio(returns: ArrayLike, risk_free: float = 0.0) -> float:
    """Annualized Sharpe ratio ``mean(x) / std(x, ddof=1) * sqrt(252)`` with excess
    returns ``x = r - risk_free / 252``.

    ``returns``: daily simple returns, shape (n,); ``risk_free``: annual fraction. NaN if
    n < 2 or the excess returns are all equal (zero dispersion; empyrical gives +-inf)."""
    x = as_returns(returns) - daily_risk_free(risk_free)
    if x.size < 2 or _is_constant(x):
        return math.nan
    return float(x.mean() / x.std(ddof=1)) * SQRT_TRADING_DAYS


def downside_deviation(returns: ArrayLike, risk_free: float = 0.0) -> float:
    """Annualized downside deviation ``sqrt(mean(min(x, 0)**2)) * sqrt(252)`` with
    ``x = r - risk_free / 252``, the mean over ALL days (days above the target count as
    zero), as empyrical's ``downside_risk``. NaN for an empty series; 0.0 when no day is
    below the target."""
    x = as_returns(returns) - daily_risk_free(risk_free)
    if x.size == 0:
        return math.nan
    return math.sqrt(float(np.mean(np.minimum(x, 0.0) ** 2))) * SQRT_TRADING_DAYS


def sortino_ratio(returns: ArrayLike, risk_free: float = 0.0) -> float:
    """Annualized Sortino ratio (empyrical's): ``mean(x) * 252 / downside_deviation``
    with excess returns ``x = r - risk_free / 252``; the target return is the daily
    risk-free rate and the downside deviation is taken over ALL days.

    No day below the target (downside deviation 0): +inf when the mean excess is positive
    (as empyrical: a series with gains and nothing to penalise is unboundedly good, and
    pages show it as such rather than hiding it), NaN when the mean is 0 too (0 / 0).
    NaN if n < 2."""
    x = as_returns(returns) - daily_risk_free(risk_free)
    if x.size < 2:
        return math.nan
    mean_annual = float(x.mean()) * TRADING_DAYS
    downside = downside_deviation(returns, risk_free)
    if downside == 0.0:
        return math.inf if mean_annual > 0 else math.nan
    return mean_annual / downside


def _finite_outcomes(values: ArrayLike) -> np.ndarray:
    pnl = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(pnl).all():
        raise ValueError("realized P&L values must be finite")
    return pnl


def _closed_trades(realized_pnls: ArrayLike) -> np.ndarray:
    pnl = _finite_outcomes(realized_pnls)
    return pnl[pnl != 0.0]


def win_rate(values: ArrayLike) -> float:
    """Fraction of outcomes that won: ``#(x > 0) / #(x != 0)``.

    ``values``: one realized P&L (money) per trade, or one daily return per day. Zero
    outcomes are neither wins nor losses and are excluded from both counts: trades that
    realize nothing (opening fills, scratches) and flat days (a book in cash), as in
    quantstats. NaN when no outcome is non-zero (quantstats returns 0.0 there). Raises
    ValueError on a non-finite value."""
    decided = _closed_trades(values)
    if decided.size == 0:
        return math.nan
    return float(np.count_nonzero(decided > 0.0)) / decided.size


def profit_factor(values: ArrayLike) -> float:
    """``sum(x | x > 0) / |sum(x | x < 0)|`` of per-trade P&L or daily returns (summed,
    not compounded). +inf with gains and no losses, NaN with neither (quantstats returns
    0 for both). Raises ValueError on a non-finite value."""
    x = _finite_outcomes(values)
    gains, losses = float(x[x > 0].sum()), float(-x[x < 0].sum())
    if losses == 0:
        return math.inf if gains > 0 else math.nan
    return gains / losses


def average_trade_pnl(realized_pnls: ArrayLike) -> float:
    """Mean realized P&L per closed trade (money): ``mean(pnl[pnl != 0])``.

    Trades with exactly 0 realized P&L are excluded, as in ``win_rate``. NaN when none
    remain."""
    pnl = _closed_trades(realized_pnls)
    if pnl.size == 0:
        return math.nan
    return float(pnl.mean())


def max_adverse_excursion(
    closes: pd.Series,
    *,
    entry_date: Hashable,
    exit_date: Hashable | None,
    side: int,
    entry_price: float,
) -> float:
    """Maximum adverse excursion of one trade, a fraction of the entry price (>= 0).

    ``MAE = max(0, max_t(-side * (close_t - entry_price) / entry_price))`` over the
    closes dated from ``entry_date`` through ``exit_date`` inclusive (``None``: the trade
    is open, through the last close). ``side`` is +1 for a long (adverse = close below
    entry), -1 for a short (adverse = close above entry; may exceed 1). 0.0 if the price
    never moved against the trade. ``closes``: Series on an ascending DatetimeIndex.
    Raises ValueError for a bad side or price, or when no close falls in the span."""
    if side not in (1, -1):
        raise ValueError(f"side must be +1 (long) or -1 (short), got {side!r}")
    if not (math.isfinite(entry_price) and entry_price > 0):
        raise ValueError(f"entry_price must be a positive number, got {entry_price!r}")
    index = closes.index
    if not index.is_monotonic_increasing:
        raise ValueError("closes must be sorted by date, ascending")
    start = index.searchsorted(pd.Timestamp(entry_date), side="left")
    stop = index.size if exit_date is None else index.searchsorted(pd.Timestamp(exit_date), "right")
    span = closes.to_numpy(dtype=float)[start:stop]
    if span.size == 0:
        raise ValueError(f"no closes between {entry_date} and {exit_date}")
    excursion = side * (span - entry_price) / entry_price
    return max(0.0, -float(excursion.min()))
