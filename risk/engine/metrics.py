"""Risk metrics of one return series and of closed trades (pure numpy/pandas).

Shapes and units. ``returns`` is a 1-D array-like (ndarray or Series) of daily simple
returns as fractions (0.01 = +1 %), oldest first. Annualized figures use 252 trading days
a year and the sample standard deviation (ddof=1). ``risk_free`` is an ANNUAL rate as a
fraction (0.02 = 2 %), converted to a daily rate arithmetically as ``risk_free / 252``
(quantstats converts geometrically, ``(1 + rf)**(1/252) - 1``; empyrical takes the daily
rate directly). Drawdowns are negative fractions of the running peak of the compounded
NAV, whose peak starts at the initial 1.0, so a loss on the first day is a drawdown.

Degenerate inputs give NaN, never an exception: a statistic that needs a dispersion (vol,
Sharpe, Sortino) is NaN with fewer than 2 observations, and Sharpe/Sortino are NaN when
their denominator is zero (empyrical returns +-inf there). NaN inside ``returns`` is not
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


def annualized_volatility(returns: ArrayLike) -> float:
    """Annualized volatility ``std(r, ddof=1) * sqrt(252)``.

    ``returns``: daily simple returns, shape (n,). NaN if n < 2; exactly 0.0 if all
    returns are equal."""
    r = as_returns(returns)
    if r.size < 2:
        return math.nan
    if _is_constant(r):
        return 0.0
    return float(r.std(ddof=1)) * SQRT_TRADING_DAYS


def rolling_volatility(returns: pd.Series, window: int) -> pd.Series:
    """Rolling annualized volatility: at row t, ``std(r[t-window+1 .. t], ddof=1) *
    sqrt(252)``.

    ``returns``: Series of daily simple returns; ``window``: trading days (>= 2), e.g. one
    of ``ROLLING_VOL_WINDOWS``. Returns a Series on the same index, NaN for the first
    ``window - 1`` rows (window not yet full). Computed on explicit windows, not with a
    running sum, so it matches ``annualized_volatility`` of the same slice exactly."""
    if window < 2:
        raise ValueError(f"window must be >= 2 trading days, got {window}")
    r = as_returns(returns)
    out = np.full(r.size, np.nan)
    if r.size >= window:
        windows = np.lib.stride_tricks.sliding_window_view(r, window)
        out[window - 1 :] = windows.std(axis=1, ddof=1) * SQRT_TRADING_DAYS
    return pd.Series(out, index=returns.index, name=returns.name)


def drawdown_series(returns: ArrayLike) -> np.ndarray | pd.Series:
    """Drawdown at each day: ``nav_t / max(1, nav_0 .. nav_t) - 1`` with
    ``nav_t = prod(1 + r_0 .. r_t)``.

    Values are <= 0 (a negative fraction of the running peak); the peak starts at the
    initial NAV of 1.0, as in empyrical and skfolio. Same length as ``returns``; a
    Series in gives a Series out on the same index."""
    r = as_returns(returns)
    nav = np.cumprod(1.0 + r)
    peak = np.maximum(np.maximum.accumulate(nav), 1.0) if r.size else nav
    dd = nav / peak - 1.0
    if isinstance(returns, pd.Series):
        return pd.Series(dd, index=returns.index, name=returns.name)
    return dd


def max_drawdown(returns: ArrayLike) -> float:
    """Maximum drawdown ``min_t drawdown_series(r)_t``: a fraction <= 0 (-0.25 = the NAV
    fell 25 % below its peak). NaN for an empty series."""
    r = as_returns(returns)
    if r.size == 0:
        return math.nan
    return float(np.min(drawdown_series(r)))


def sharpe_ratio(returns: ArrayLike, risk_free: float = 0.0) -> float:
    """Annualized Sharpe ratio ``mean(x) / std(x, ddof=1) * sqrt(252)`` with excess
    returns ``x = r - risk_free / 252``.

    ``returns``: daily simple returns, shape (n,); ``risk_free``: annual fraction. NaN if
    n < 2 or the excess returns are all equal (zero dispersion)."""
    x = as_returns(returns) - daily_risk_free(risk_free)
    if x.size < 2 or _is_constant(x):
        return math.nan
    return float(x.mean() / x.std(ddof=1)) * SQRT_TRADING_DAYS


def sortino_ratio(returns: ArrayLike, risk_free: float = 0.0) -> float:
    """Annualized Sortino ratio (empyrical's): ``mean(x) * 252 / (dd * sqrt(252))`` with
    excess returns ``x = r - risk_free / 252`` and downside deviation
    ``dd = sqrt(mean(min(x, 0)**2))`` over ALL days (not only the losing ones).

    The target return is the daily risk-free rate. NaN if n < 2 or dd == 0 (no day below
    the target; empyrical returns +inf there)."""
    x = as_returns(returns) - daily_risk_free(risk_free)
    if x.size < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(x, 0.0) ** 2)))
    if downside == 0.0:
        return math.nan
    return float(x.mean()) / downside * SQRT_TRADING_DAYS


def _closed_trades(realized_pnls: ArrayLike) -> np.ndarray:
    pnl = np.asarray(realized_pnls, dtype=float).ravel()
    if not np.isfinite(pnl).all():
        raise ValueError("realized P&L values must be finite")
    return pnl[pnl != 0.0]


def win_rate(realized_pnls: ArrayLike) -> float:
    """Fraction of trades that won: ``#(pnl > 0) / #(pnl != 0)``.

    ``realized_pnls``: one realized P&L (money) per trade. Trades with exactly 0 realized
    P&L (opening fills, which realize nothing) are excluded from both counts. NaN when no
    trade has a non-zero P&L."""
    pnl = _closed_trades(realized_pnls)
    if pnl.size == 0:
        return math.nan
    return float(np.count_nonzero(pnl > 0.0)) / pnl.size


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
