"""Boundary checks shared by the reporting engine: a bad input raises ``ValueError`` with a
message naming the argument, instead of producing a plausible-looking wrong number.

A *return series* is a ``pd.Series`` of daily simple returns (0.01 = +1 %) on a strictly
increasing ``DatetimeIndex`` of trading days, finite and >= -1 (a -100 % day wipes the book
out; less is impossible for an unlevered book and a sign of a bad price).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def checked_index(index: pd.Index, name: str) -> None:
    """Raise unless ``index`` is a strictly increasing ``DatetimeIndex``."""
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"{name} must have a DatetimeIndex, got {type(index).__name__}")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError(f"{name} dates must be strictly increasing (sorted, no duplicates)")


def checked_returns(returns: pd.Series, name: str = "returns", *, allow_nan: bool = False):
    """``returns`` as float64 after checking it is a return series (module docstring).
    ``allow_nan`` admits NaN (a strategy that has not started yet); rolling windows that
    contain one are then NaN."""
    if not isinstance(returns, pd.Series):
        raise ValueError(f"{name} must be a pandas Series, got {type(returns).__name__}")
    checked_index(returns.index, name)
    values = returns.astype("float64")
    _check_values(values.to_numpy(), name, allow_nan=allow_nan)
    return values


def checked_frame(frame: pd.DataFrame, name: str, *, allow_nan: bool = False) -> pd.DataFrame:
    """``frame`` as float64 after checking its index and that its values are finite (NaN
    only when ``allow_nan``). Values are not range-checked: weights and equity use it too."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    checked_index(frame.index, name)
    if not frame.columns.is_unique:
        raise ValueError(f"{name} has duplicate columns")
    values = frame.astype("float64")
    array = values.to_numpy()
    if np.isinf(array).any() or (not allow_nan and np.isnan(array).any()):
        raise ValueError(f"{name} must be finite" + ("" if allow_nan else " (no NaN)"))
    return values


def checked_return_frame(frame: pd.DataFrame, name: str, *, allow_nan: bool = False):
    """``frame`` (dates x series of daily simple returns) as float64 after the checks of
    ``checked_frame`` and that every return is >= -1."""
    values = checked_frame(frame, name, allow_nan=allow_nan)
    _check_values(values.to_numpy(), name, allow_nan=allow_nan)
    return values


def _check_values(array: np.ndarray, name: str, *, allow_nan: bool) -> None:
    """Raise on NaN (unless allowed), infinities, or a return below -1."""
    if not allow_nan and np.isnan(array).any():
        raise ValueError(f"{name} contains NaN")
    if np.isinf(array).any():
        raise ValueError(f"{name} contains an infinite value")
    if (array[~np.isnan(array)] < -1).any():
        raise ValueError(f"{name} contains a return below -100 %")
