"""Rolling (trailing-window) statistics of daily returns, for the rolling-metrics charts.

Shapes and units. ``returns`` is a ``pd.Series`` or a ``pd.DataFrame`` (dates x strategies)
of daily simple returns on a strictly increasing ``DatetimeIndex``; NaN is allowed (a
strategy that has not started yet). Each result has the input's index and columns; row t is
computed from the ``window`` returns t-window+1 .. t and is NaN until the window is full or
while the window contains a NaN. Conventions as ``performance``: 252 trading days a year,
sample statistics (ddof=1), annual risk-free rate ``rf`` applied as ``rf / 252`` a day.
Computed with pandas' rolling kernels (one pass over the data, no per-window Python loop).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from risk.engine.metrics import ROLLING_VOL_WINDOWS, TRADING_DAYS, rolling_volatility

from reporting.engine.checks import checked_return_frame, checked_returns

ROLLING_WINDOWS = ROLLING_VOL_WINDOWS  # what the dashboard offers; any window >= 2 works


def _checked(returns, window: int):
    """``returns`` (Series or DataFrame, NaN allowed) after checking it and ``window``."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    if isinstance(returns, pd.DataFrame):
        return checked_return_frame(returns, "returns", allow_nan=True)
    return checked_returns(returns, allow_nan=True)


def _positive(sd):
    """sd with zero dispersion turned into NaN: a ratio over a flat window is undefined."""
    return sd.where(sd > 0)


def rolling_annual_volatility(returns, window: int):
    """The trailing annualized volatility ``risk.engine.metrics.rolling_volatility`` (its
    docstring has the formula; the same values as empyrical.roll_annual_volatility) of
    ``returns`` checked at this module's boundary."""
    return rolling_volatility(_checked(returns, window), window)


def rolling_sharpe_ratio(returns, window: int, rf: float = 0.0):
    """mean(x) / std(x, ddof=1) * sqrt(252) over the trailing window, x = r - rf / 252 (``rf``
    annual). NaN where the window's returns do not vary (empyrical.roll_sharpe_ratio)."""
    x = _checked(returns, window) - rf / TRADING_DAYS
    rolling = x.rolling(window, min_periods=window)
    return rolling.mean() / _positive(rolling.std(ddof=1)) * math.sqrt(TRADING_DAYS)


def rolling_beta(returns, benchmark: pd.Series, window: int):
    """beta_t = cov(r, b) / var(b) over the trailing window, both with ddof=1 (the divisor
    cancels, so this equals empyrical's beta, which uses population moments). ``benchmark``
    (daily simple returns) must have exactly the index of ``returns``; NaN where the
    benchmark does not vary in the window."""
    r = _checked(returns, window)
    b = checked_returns(benchmark, "benchmark", allow_nan=True)
    if not b.index.equals(r.index):
        raise ValueError("benchmark must have exactly the dates of returns")
    var = _positive(b.rolling(window, min_periods=window).var(ddof=1))
    if isinstance(r, pd.DataFrame):
        cov = r.apply(lambda col: col.rolling(window, min_periods=window).cov(b, ddof=1))
        return cov.div(var, axis=0)
    return r.rolling(window, min_periods=window).cov(b, ddof=1) / var


def rolling_correlations(returns: pd.DataFrame, window: int) -> pd.DataFrame:
    """Pearson correlation of every pair of columns over the trailing window:
    rho_ab = cov(a, b) / (std(a) std(b)) (the ddof cancels). Columns are a MultiIndex
    (a, b) for each pair a before b in column order; NaN where either series does not vary
    in the window."""
    r = _checked(returns, window)
    if not isinstance(r, pd.DataFrame) or r.shape[1] < 2:
        raise ValueError("returns must be a DataFrame with at least two columns")
    pairs = list(itertools.combinations(r.columns, 2))
    result = pd.DataFrame(
        {(a, b): r[a].rolling(window, min_periods=window).corr(r[b]) for a, b in pairs},
        index=r.index,
    )
    result.columns = pd.MultiIndex.from_tuples(pairs, names=["a", "b"])
    sd = r.rolling(window, min_periods=window).std(ddof=1)
    flat = pd.DataFrame({p: (sd[p[0]] > 0) & (sd[p[1]] > 0) for p in pairs}, index=r.index)
    flat.columns = result.columns
    return result.where(flat)


def correlation_band(pairs: pd.DataFrame) -> pd.DataFrame:
    """The spread of pairwise correlations on each date, from ``rolling_correlations``:
    columns mean (the average pairwise correlation, sum_{a<b} rho_ab / n_pairs over the
    pairs defined that day), min and max. NaN on a date where no pair is defined. With n
    strategies there are n (n - 1) / 2 pairs, so one line per pair stops being readable
    beyond a handful; this summary stays three lines."""
    if pairs.shape[1] == 0:
        raise ValueError("pairs must have at least one column")
    values = pairs.to_numpy(dtype=float)
    defined = np.isfinite(values).any(axis=1)
    out = np.full((len(pairs), 3), np.nan)
    with np.errstate(all="ignore"):
        rows = values[defined]
        out[defined] = np.column_stack(
            (np.nanmean(rows, axis=1), np.nanmin(rows, axis=1), np.nanmax(rows, axis=1))
        )
    return pd.DataFrame(out, index=pairs.index, columns=["mean", "min", "max"])
