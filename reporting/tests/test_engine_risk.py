"""Risk contributions and trailing covariance on hand-worked numbers (no database)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reporting.engine.risk import (
    diversification_ratio,
    risk_contributions,
    trailing_correlation,
    trailing_covariance,
)


def test_risk_contributions_are_w_times_sw_over_portfolio_vol_and_sum_to_it():
    # S = [[0.04, 0.01], [0.01, 0.09]], w = [0.5, 0.5]
    # S w = [0.025, 0.05]; w'Sw = 0.5*0.025 + 0.5*0.05 = 0.0375; vol = sqrt(0.0375)
    # RC = [0.0125, 0.025] / 0.193649... = [0.064550, 0.129099]
    cov = pd.DataFrame([[0.04, 0.01], [0.01, 0.09]], index=["a", "b"], columns=["a", "b"])
    rc = risk_contributions(cov, pd.Series({"b": 0.5, "a": 0.5}))
    vol = math.sqrt(0.0375)
    np.testing.assert_allclose(rc.to_numpy(), [0.0125 / vol, 0.025 / vol])
    assert list(rc.index) == ["a", "b"]
    assert rc.sum() == pytest.approx(vol)


def test_a_hedging_book_has_a_negative_risk_contribution():
    # perfectly anti-correlated: S = [[1, -1], [-1, 1]] * 0.01, w = [0.75, 0.25]
    # S w = [0.005, -0.005]; w'Sw = 0.0025; vol 0.05; RC = [0.075, -0.025]
    cov = pd.DataFrame([[0.01, -0.01], [-0.01, 0.01]], index=["x", "y"], columns=["x", "y"])
    rc = risk_contributions(cov, pd.Series({"x": 0.75, "y": 0.25}))
    np.testing.assert_allclose(rc.to_numpy(), [0.075, -0.025])


def test_risk_contributions_are_nan_with_nothing_at_risk_and_refuse_mismatched_labels():
    cov = pd.DataFrame(np.zeros((2, 2)), index=["a", "b"], columns=["a", "b"])
    assert risk_contributions(cov, pd.Series({"a": 1.0, "b": 0.0})).isna().all()
    with pytest.raises(ValueError, match="exactly the strategies"):
        risk_contributions(cov, pd.Series({"a": 1.0, "c": 0.0}))


def test_trailing_covariance_uses_the_last_window_complete_rows_annualized():
    # last 3 complete rows of a: [0.01, 0.03, 0.02] mean 0.02, var (1+1+0)e-4/2 = 1e-4
    # b: [0.0, 0.02, 0.01] mean 0.01, var 1e-4; cov ((-1)(-1) + 1*1 + 0)e-4 / 2 = 1e-4
    idx = pd.date_range("2024-01-01", periods=5, freq="B")
    r = pd.DataFrame(
        {"a": [0.5, np.nan, 0.01, 0.03, 0.02], "b": [0.5, 0.0, 0.0, 0.02, 0.01]}, index=idx
    )
    cov = trailing_covariance(r, window=3)
    np.testing.assert_allclose(cov.to_numpy(), np.full((2, 2), 1e-4 * 252))
    np.testing.assert_allclose(trailing_correlation(r, window=3).to_numpy(), np.ones((2, 2)))


def test_diversification_ratio_of_two_uncorrelated_equal_books_is_sqrt_two():
    # vols 0.1 each, uncorrelated, w = 0.5 each: (0.05 + 0.05) / sqrt(2 * 0.25 * 0.01)
    cov = pd.DataFrame([[0.01, 0.0], [0.0, 0.01]], index=["a", "b"], columns=["a", "b"])
    dr = diversification_ratio(cov, pd.Series({"a": 0.5, "b": 0.5}))
    assert dr == pytest.approx(math.sqrt(2))
