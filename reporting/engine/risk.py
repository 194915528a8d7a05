"""Risk decomposition of a portfolio of strategy books, for the risk dashboard.

Shapes and units. ``returns`` is a ``pd.DataFrame`` (dates x strategies) of daily simple
returns on a strictly increasing ``DatetimeIndex``; ``weights`` a ``pd.Series`` over the
same strategies (fractions of portfolio equity, need not sum to 1); ``cov`` a square
``pd.DataFrame`` with the strategies as index and columns. Volatilities are in the unit of
``cov`` (daily, or annualized when ``cov`` is annualized: multiply a daily covariance by
252).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reporting.engine.checks import checked_return_frame

TRADING_DAYS = 252


def trailing_covariance(returns: pd.DataFrame, window: int, annualize: bool = True):
    """Sample covariance S (ddof=1) of the last ``window`` rows of ``returns``, times 252
    when ``annualize``. Rows with a NaN (a book not started yet) are dropped first; raises
    when fewer than 2 rows remain."""
    r = checked_return_frame(returns, "returns", allow_nan=True).dropna().iloc[-window:]
    if len(r) < 2:
        raise ValueError("need at least 2 complete rows of returns for a covariance")
    cov = r.cov(ddof=1)
    return cov * TRADING_DAYS if annualize else cov


def trailing_correlation(returns: pd.DataFrame, window: int) -> pd.DataFrame:
    """Pearson correlation rho_ab = cov(a, b) / (std(a) std(b)) of the last ``window``
    complete rows (NaN rows dropped); NaN for a column that does not vary."""
    r = checked_return_frame(returns, "returns", allow_nan=True).dropna().iloc[-window:]
    return r.corr()


def risk_contributions(cov: pd.DataFrame, weights: pd.Series) -> pd.Series:
    """Risk contribution of strategy i: RC_i = w_i (S w)_i / sqrt(w' S w), S = ``cov``.

    The contributions add up to the portfolio volatility sqrt(w' S w) (Euler: volatility
    is homogeneous of degree 1 in w). A negative RC_i is a book that hedges the others.
    All NaN when w' S w = 0 (nothing at risk)."""
    if not isinstance(cov, pd.DataFrame) or not isinstance(weights, pd.Series):
        raise ValueError("cov must be a DataFrame and weights a Series")
    if not (cov.index.equals(cov.columns) and set(cov.index) == set(weights.index)):
        raise ValueError("cov must be square over exactly the strategies of weights")
    s = cov.astype("float64").to_numpy()
    w = weights.reindex(cov.index).astype("float64").to_numpy()
    if not (np.isfinite(s).all() and np.isfinite(w).all()):
        raise ValueError("cov and weights must be finite")
    if not np.allclose(s, s.T):
        raise ValueError("cov must be symmetric")
    sw = s @ w
    variance = float(w @ sw)
    if variance <= 0:
        return pd.Series(math.nan, index=cov.index, name="risk_contribution")
    return pd.Series(w * sw / math.sqrt(variance), index=cov.index, name="risk_contribution")


def diversification_ratio(cov: pd.DataFrame, weights: pd.Series) -> float:
    """sum_i |w_i| sigma_i / sqrt(w' S w) (Choueifaty): >= 1 when the books diversify each
    other; NaN when w' S w = 0."""
    w = weights.reindex(cov.index).astype("float64").to_numpy()
    s = cov.astype("float64").to_numpy()
    variance = float(w @ s @ w)
    if variance <= 0:
        return math.nan
    return float(np.abs(w) @ np.sqrt(np.diag(s)) / math.sqrt(variance))
