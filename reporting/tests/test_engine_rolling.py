"""Rolling statistics: hand-worked windows, then empyrical's rolling functions and pandas'
pairwise correlation on the bundled real prices."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from reporting.engine.rolling import (
    ROLLING_WINDOWS,
    rolling_annual_volatility,
    rolling_beta,
    rolling_correlations,
    rolling_sharpe_ratio,
)


def series(values) -> pd.Series:
    return pd.Series(values, index=pd.bdate_range("2024-01-01", periods=len(values)), dtype=float)


# r = .01, .03, -.01, .02, window 3.
# Window 1 (.01 .03 -.01): mean .01, deviations 0 .02 -.02, var .0008 / 2 = .0004, sd .02.
# Window 2 (.03 -.01 .02): mean 1/75 = .013333, deviations .016667 -.023333 .006667,
# squares sum .00086667 -> var .00043333, sd .020817.
R = series([0.01, 0.03, -0.01, 0.02])
SD2 = math.sqrt(0.0008666666666666667 / 2)


def test_rolling_volatility_is_nan_until_the_window_is_full():
    vol = rolling_annual_volatility(R, 3)
    assert vol.iloc[:2].isna().all()
    assert_allclose(vol.iloc[2:], [0.02 * math.sqrt(252), SD2 * math.sqrt(252)], rtol=1e-9)


def test_rolling_sharpe_uses_the_daily_risk_free_rate():
    sharpe = rolling_sharpe_ratio(R, 3)
    assert_allclose(
        sharpe.iloc[2:], [0.01 / 0.02 * math.sqrt(252), (1 / 75) / SD2 * math.sqrt(252)]
    )
    # rf 2.52 % a year = .0001 a day lowers each mean by .0001, leaves the sd alone.
    with_rf = rolling_sharpe_ratio(R, 3, rf=0.0252)
    assert_allclose(with_rf.iloc[2], 0.0099 / 0.02 * math.sqrt(252), rtol=1e-9)


def test_rolling_beta_is_the_window_regression_slope():
    # b = .01, .02, .03, .01; r = 2 b - .005 exactly -> beta 2 in every full window.
    b = series([0.01, 0.02, 0.03, 0.01])
    r = 2 * b - 0.005
    beta = rolling_beta(r, b, 3)
    assert beta.iloc[:2].isna().all()
    assert_allclose(beta.iloc[2:], [2.0, 2.0], rtol=1e-9)
    # Window 1 of R against b: b dev -.01 0 .01, R dev 0 .02 -.02: cov -.0002 / 2,
    # var .0002 / 2 -> beta -1.
    assert_allclose(rolling_beta(R, b, 3).iloc[2], -1.0, rtol=1e-9)


def test_rolling_beta_refuses_misaligned_benchmarks():
    with pytest.raises(ValueError, match="dates"):
        rolling_beta(R, R.iloc[1:], 2)


def test_a_flat_window_gives_nan_not_an_infinite_ratio():
    flat = series([0.01, 0.01, 0.01, 0.02])
    assert math.isnan(rolling_sharpe_ratio(flat, 3).iloc[2])
    assert math.isnan(rolling_beta(R, flat, 3).iloc[2])


def test_rolling_correlations_name_each_pair_once():
    # a = .01 .02 .03 .01; b = -a (rho -1); c = a + (0, .01, 0, 0): window 1 of a vs c:
    # a dev -.01 0 .01, c = .01 .03 .03 dev -.01333 .00667 .00667:
    # cov (.0001333 + 0 + .0000667) = .0002, var_a .0002, var_c .0002667
    # -> rho .0002 / sqrt(.0002 * .00026667) = .866025.
    a = [0.01, 0.02, 0.03, 0.01]
    frame = pd.DataFrame(
        {"a": a, "b": [-x for x in a], "c": [0.01, 0.03, 0.03, 0.01]},
        index=pd.bdate_range("2024-01-01", periods=4),
    )
    rho = rolling_correlations(frame, 3)
    assert list(rho.columns) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert rho.iloc[:2].isna().all().all()
    assert_allclose(rho[("a", "b")].iloc[2:], [-1.0, -1.0], rtol=1e-9)
    assert_allclose(rho[("a", "c")].iloc[2], math.sqrt(0.75), rtol=1e-9)


def test_a_strategy_that_starts_late_is_nan_until_it_has_a_full_window():
    frame = pd.DataFrame(
        {"a": [0.01, 0.02, 0.03, 0.01, 0.02], "b": [np.nan, np.nan, 0.01, -0.01, 0.03]},
        index=pd.bdate_range("2024-01-01", periods=5),
    )
    vol = rolling_annual_volatility(frame, 3)
    assert vol["a"].notna().sum() == 3 and vol["b"].notna().sum() == 1
    assert rolling_correlations(frame, 3).notna().sum().iloc[0] == 1


def test_windows_below_two_are_rejected():
    assert ROLLING_WINDOWS == (30, 60, 90)
    with pytest.raises(ValueError, match="window"):
        rolling_annual_volatility(R, 1)


# --- cross-checks on the bundled real prices -------------------------------------------


@pytest.fixture(scope="module")
def real_returns() -> pd.DataFrame:
    from portfolio.feeds import closes_frame

    returns = closes_frame().pct_change().iloc[1:]
    returns["basket"] = returns.drop(columns="SP500").mean(axis=1)
    return returns


@pytest.mark.parametrize("window", ROLLING_WINDOWS)
@pytest.mark.parametrize("name", ["AAPL", "basket"])
def test_rolling_sharpe_and_volatility_equal_empyrical(real_returns, name, window):
    import empyrical as ep

    r = real_returns[name]
    # empyrical returns only the full windows, indexed by each window's last day.
    theirs = ep.roll_sharpe_ratio(r, window, risk_free=0.03 / 252)
    ours = rolling_sharpe_ratio(r, window, rf=0.03)
    assert ours.iloc[: window - 1].isna().all()
    assert ours.iloc[window - 1 :].index.equals(theirs.index)
    # pandas' rolling kernels update sums incrementally; empyrical recomputes each window.
    # The difference is rounding, about 1e-12 relative over 8,000 days.
    assert_allclose(ours.iloc[window - 1 :], theirs, rtol=1e-9)
    assert_allclose(
        rolling_annual_volatility(r, window).iloc[window - 1 :],
        ep.roll_annual_volatility(r, window),
        rtol=1e-9,
    )


@pytest.mark.parametrize("window", ROLLING_WINDOWS)
def test_rolling_beta_equals_empyrical_despite_its_population_moments(real_returns, window):
    import empyrical as ep

    r, b = real_returns["AAPL"], real_returns["SP500"]
    # empyrical divides cov and var by n, we by n - 1: the ratio is the same.
    theirs = ep.roll_beta(r, b, window)
    assert_allclose(rolling_beta(r, b, window).iloc[window - 1 :], theirs, rtol=1e-9)
    # The last full-sample window is plain empyrical.beta.
    n = len(r)
    assert_allclose(rolling_beta(r, b, n).iloc[-1], ep.beta(r, b), rtol=1e-10)


def test_rolling_correlations_equal_numpy_on_real_windows_and_run_vectorized(real_returns):
    r = real_returns.drop(columns="basket")
    started = time.perf_counter()
    rho = rolling_correlations(r, 60)
    elapsed = time.perf_counter() - started
    assert rho.shape == (len(r), 21 * 20 // 2)
    for end in (59, 4000, len(r) - 1):
        window = r.iloc[end - 59 : end + 1]
        expected = np.corrcoef(window["AAPL"], window["MSFT"])[0, 1]
        assert_allclose(rho[("AAPL", "MSFT")].iloc[end], expected, rtol=1e-9)
    assert elapsed < 5  # 210 pairs x 8,312 days; a per-window loop takes minutes
