"""The read path of returns for statistics, on literal snapshot frames (no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reporting.selectors import portfolio_return_series, strategy_return_frame


def test_the_portfolio_funding_day_is_not_a_return():
    # Three snapshots: the funding day (stored 0.0) and two closes after it -> 2 returns.
    snaps = pd.DataFrame(
        {"daily_return": [0.0, 0.01, -0.02]},
        index=pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]),
    )
    r = portfolio_return_series(snaps)
    assert list(r.index.day) == [3, 4]
    np.testing.assert_allclose(r, [0.01, -0.02])


def test_each_book_loses_its_own_funding_day_not_the_portfolios():
    # Book a is funded on Jan 2, book b only on Jan 3: a has 2 returns, b has 1 (Jan 4);
    # b's stored 0.0 on Jan 3 is its funding day, not a flat day.
    long = pd.DataFrame(
        [
            ("a", "2024-01-02", 0.0),
            ("a", "2024-01-03", 0.01),
            ("b", "2024-01-03", 0.0),
            ("a", "2024-01-04", 0.02),
            ("b", "2024-01-04", -0.03),
        ],
        columns=["strategy", "date", "daily_return"],
    ).assign(date=lambda f: pd.to_datetime(f["date"]))
    wide = strategy_return_frame(long, ["b", "a"])
    assert list(wide.columns) == ["b", "a"]
    np.testing.assert_allclose(wide["a"].dropna(), [0.01, 0.02])
    np.testing.assert_allclose(wide["b"].dropna(), [-0.03])
    assert list(wide["b"].dropna().index.day) == [4]
