"""Chart downsampling keeps each bucket's first, last, minimum and maximum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal

from reporting.engine.downsample import decimate


def test_decimate_keeps_first_last_min_and_max_of_each_bucket():
    # 10 points, max_points 8 -> 8 // 4 = 2 buckets of 5:
    # bucket 0 = 5 9 1 7 3: first 0, last 4, min at 2, max at 1 -> rows 0 1 2 4;
    # bucket 1 = 4 0 8 2 6: first 5, last 9, min at 6, max at 7 -> rows 5 6 7 9.
    s = pd.Series([5, 9, 1, 7, 3, 4, 0, 8, 2, 6], index=pd.bdate_range("2024-01-01", periods=10))
    kept = decimate(s, 8)
    assert_array_equal(kept.to_numpy(), [5, 9, 1, 3, 4, 0, 8, 6])
    assert kept.index.equals(s.index[[0, 1, 2, 4, 5, 6, 7, 9]])


def test_short_series_come_back_whole():
    s = pd.Series([1.0, 2.0, 3.0])
    assert decimate(s, 4).equals(s)


def test_a_frame_keeps_every_columns_extremes():
    # 7 rows, 2 columns -> 2 + 2 * 2 = 6 rows per bucket; max_points 6 -> one bucket:
    # first 0, last 6, a: min (-5) at 3, max (5) at 1; b: min (-3) at 2, max (3) at 4.
    # Row 5, no one's extreme, is the one dropped.
    frame = pd.DataFrame({"a": [0, 5, 0, -5, 0, 0, 0], "b": [0, 0, -3, 0, 3, 0, 1]})
    kept = decimate(frame, 6)
    assert list(kept.index) == [0, 1, 2, 3, 4, 6]


def test_nan_is_skipped_when_looking_for_extremes():
    s = pd.Series([np.nan, 1.0, np.nan, -1.0, 0.5, np.nan, 2.0, 0.0, np.nan])
    kept = decimate(s, 4)  # one bucket of 9: first 0, last 8, min at 3, max at 6
    assert list(kept.index) == [0, 3, 6, 8]


def test_too_few_points_to_keep_the_extremes_is_refused():
    with pytest.raises(ValueError, match=">= 4"):
        decimate(pd.Series([1.0, 2.0]), 3)
    with pytest.raises(ValueError, match=">= 6"):
        decimate(pd.DataFrame({"a": [1.0], "b": [2.0]}), 5)


def test_eight_thousand_days_of_real_equity_fit_in_a_chart_with_their_trough():
    from portfolio.feeds import closes_frame

    equity = closes_frame()["SP500"]
    drawdown = equity / equity.cummax() - 1
    frame = pd.DataFrame({"equity": equity, "drawdown": drawdown})
    kept = decimate(frame, 600)
    assert len(kept) <= 600
    assert kept["drawdown"].min() == drawdown.min()  # the 2009 trough survives
    assert kept.index[0] == equity.index[0] and kept.index[-1] == equity.index[-1]


@settings(max_examples=200, deadline=None)
@given(
    arrays(float, st.integers(1, 500), elements=st.floats(-1e6, 1e6)),
    st.integers(4, 120),
)
def test_decimate_always_keeps_the_endpoints_and_global_extremes(values, max_points):
    s = pd.Series(values, index=pd.RangeIndex(len(values)) * 3)
    kept = decimate(s, max_points)
    assert len(kept) <= max_points
    assert kept.index[0] == s.index[0] and kept.index[-1] == s.index[-1]
    assert kept.min() == s.min() and kept.max() == s.max()
    assert kept.index.is_monotonic_increasing and kept.index.is_unique
    assert (kept == s.loc[kept.index]).all()
