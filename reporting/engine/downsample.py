"""Downsampling for charts: 8,000 daily points drawn into a few hundred pixels, without
losing the extremes the eye looks for (a drawdown trough, a one-day spike).

Shapes. A ``pd.Series`` or ``pd.DataFrame`` (rows in chart order, any index); the result is
a subset of its rows, in the original order, with the original index and values.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def decimate(data: pd.Series | pd.DataFrame, max_points: int) -> pd.Series | pd.DataFrame:
    """At most ``max_points`` rows of ``data`` that keep every bucket's extremes.

    Rule: with n <= max_points rows, all rows are returned. Otherwise, with k columns (1
    for a Series), the rows are cut into B = max_points // (2 + 2k) consecutive buckets of
    s = ceil(n / B) rows (the last may be shorter), and from each bucket the rows holding
    its first and last row and, for each column, its minimum and maximum (first occurrence,
    NaN ignored) are kept; rows kept twice appear once. Hence the first and last rows and
    every column's global minimum and maximum are always kept, and at most
    B (2 + 2k) <= max_points rows are returned. ``max_points`` must be >= 2 + 2k.
    """
    is_series = isinstance(data, pd.Series)
    if not is_series and not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a Series or DataFrame, got {type(data).__name__}")
    values = data.to_numpy(dtype="float64").reshape(len(data), -1)
    n, k = values.shape
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2 + 2 * k:
        raise ValueError(f"max_points must be an integer >= {2 + 2 * k}, got {max_points!r}")
    if n <= max_points:
        return data.copy()
    size = math.ceil(n / (max_points // (2 + 2 * k)))
    return data.iloc[_kept_positions(values, size)]


def _kept_positions(values: np.ndarray, size: int) -> np.ndarray:
    """Sorted unique row positions: each bucket's first, last, and per-column argmin and
    argmax, found at once on a (buckets x size x k) array padded with NaN."""
    n, k = values.shape
    buckets = math.ceil(n / size)
    padded = np.full((buckets * size, k), np.nan)
    padded[:n] = values
    cube = padded.reshape(buckets, size, k)
    starts = np.arange(buckets) * size
    # +inf / -inf stand in for NaN so argmin / argmax skip it; an all-NaN bucket column
    # yields offset 0, the bucket's first row, which is kept anyway.
    low = np.argmin(np.where(np.isnan(cube), np.inf, cube), axis=1)
    high = np.argmax(np.where(np.isnan(cube), -np.inf, cube), axis=1)
    ends = np.minimum(starts + size, n) - 1
    kept = np.concatenate(
        (starts, ends, (starts[:, None] + low).ravel(), (starts[:, None] + high).ravel())
    )
    return np.unique(kept)
