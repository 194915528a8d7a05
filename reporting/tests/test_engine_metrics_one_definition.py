"""One metrics library: the reporting side imports the risk side's definitions, so the
edge cases (no downside, constant returns, empty, one value) come out the same wherever a
page, the risk manager or an export asks, and they agree with empyrical where its
convention is ours."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from reporting.engine import performance, rolling
from risk.engine import metrics
from risk.engine.portfolio_risk import portfolio_risk

SHARED = (
    "annual_volatility",
    "downside_deviation",
    "drawdown_series",
    "max_drawdown",
    "profit_factor",
    "sharpe_ratio",
    "sortino_ratio",
    "win_rate",
)


def series(values) -> pd.Series:
    return pd.Series(values, index=pd.bdate_range("2024-01-01", periods=len(values)), dtype=float)


@pytest.mark.parametrize("name", SHARED)
def test_reporting_uses_the_risk_definition_not_a_copy(name):
    assert getattr(performance, name) is getattr(metrics, name)


def test_rolling_volatility_is_the_risk_definition_with_the_reporting_boundary_checks():
    r = series([0.01, -0.01, 0.02, 0.0])
    pd.testing.assert_series_equal(
        rolling.rolling_annual_volatility(r, 3), metrics.rolling_volatility(r, 3)
    )
    assert rolling.ROLLING_WINDOWS == metrics.ROLLING_VOL_WINDOWS


def test_no_downside_is_an_infinite_sortino_everywhere():
    # The example: .01, .02, 0, .01 never falls below 0 and has a positive mean.
    r = series([0.01, 0.02, 0.0, 0.01])
    assert metrics.sortino_ratio(r) == math.inf
    assert performance.performance_stats(r).sortino_ratio == math.inf
    assert metrics.downside_deviation(r) == 0.0
    # Sharpe is finite: mean .01, sample std sqrt(.0002 / 3); .01 / .0081650 * sqrt(252).
    expected = 0.01 / math.sqrt(0.0002 / 3) * math.sqrt(252)
    assert metrics.sharpe_ratio(r) == pytest.approx(expected, rel=1e-12)
    assert performance.performance_stats(r).sharpe_ratio == pytest.approx(expected, rel=1e-12)


def test_constant_returns_have_zero_vol_an_undefined_sharpe_and_no_drawdown():
    r = series([0.01] * 5)
    stats = performance.performance_stats(r)
    assert metrics.annual_volatility(r) == 0.0 and stats.annual_volatility == 0.0
    assert math.isnan(metrics.sharpe_ratio(r)) and math.isnan(stats.sharpe_ratio)
    assert stats.sortino_ratio == math.inf  # positive mean, nothing below target
    assert stats.max_drawdown == 0.0 and metrics.max_drawdown(r) == 0.0
    assert stats.win_rate == 1.0 and stats.profit_factor == math.inf
    # The risk manager's Sharpe of a constant portfolio is the same NaN.
    risk = portfolio_risk(np.full((5, 1), 0.01), [1.0])
    assert math.isnan(risk.sharpe)
    flat = series([0.0] * 4)
    assert math.isnan(metrics.sortino_ratio(flat)) and math.isnan(metrics.win_rate(flat))
    assert math.isnan(metrics.profit_factor(flat))
    # A constant loss: downside .01 a day, so Sortino = -.01 * 252 / (.01 * sqrt(252)).
    assert metrics.sortino_ratio([-0.01] * 4) == pytest.approx(-math.sqrt(252), rel=1e-12)


def test_one_value_and_empty_give_nan_not_an_exception():
    for r in ([0.01], []):
        assert math.isnan(metrics.annual_volatility(r))
        assert math.isnan(metrics.sharpe_ratio(r))
        assert math.isnan(metrics.sortino_ratio(r))
    assert math.isnan(metrics.max_drawdown([]))
    assert math.isnan(metrics.downside_deviation([]))
    assert math.isnan(metrics.win_rate([]))
    assert metrics.drawdown_series([]).size == 0
    # One losing day is a drawdown from the initial 1.0.
    assert metrics.max_drawdown([-0.05]) == pytest.approx(-0.05)
    one = performance.performance_stats(series([0.01]))
    assert math.isnan(one.sharpe_ratio) and math.isnan(one.sortino_ratio)
    assert math.isnan(one.annual_volatility) and one.max_drawdown == 0.0


def test_hand_worked_downside_deviation_and_sortino():
    # r = .02, -.01, .03, -.03: min(r, 0) = 0, -.01, 0, -.03; mean square
    # (.0001 + .0009) / 4 = .00025; dd = sqrt(.00025 * 252) = .250998.
    # mean .0025 -> Sortino .0025 * 252 / .250998 = 2.509980.
    r = [0.02, -0.01, 0.03, -0.03]
    assert metrics.downside_deviation(r) == pytest.approx(math.sqrt(0.00025 * 252), rel=1e-12)
    assert metrics.sortino_ratio(r) == pytest.approx(0.0025 * 252 / math.sqrt(0.063), rel=1e-12)


def test_drawdown_series_takes_returns_positionally_or_an_equity_curve():
    r = series([0.10, -0.20, 0.05, 0.25])  # NAV 1.1, .88, .924, 1.155
    dd = metrics.drawdown_series(r)
    assert dd.name == "drawdown" and dd.index.equals(r.index)
    np.testing.assert_allclose(dd.to_numpy(), [0.0, -0.2, -0.16, 0.0], atol=1e-15)
    np.testing.assert_allclose(metrics.drawdown_series(returns=r.to_numpy()), dd, atol=0)
    equity = np.array([100.0, 90.0, 120.0, 60.0])
    np.testing.assert_allclose(metrics.drawdown_series(equity=equity), [0, -0.1, 0, -0.5])
    with pytest.raises(ValueError, match="positive"):
        metrics.drawdown_series(equity=[100.0, 0.0])
    with pytest.raises(ValueError, match="exactly one"):
        metrics.drawdown_series(r, equity=equity)


def test_win_rate_and_profit_factor_mean_the_same_for_days_and_trades():
    # Days .01, 0, -.02, .03: 2 wins of 3 that moved; profit factor .04 / .02 = 2.
    days = series([0.01, 0.0, -0.02, 0.03])
    assert performance.performance_stats(days).win_rate == pytest.approx(2 / 3)
    assert performance.performance_stats(days).profit_factor == pytest.approx(2.0)
    trades = pd.DataFrame(
        {
            "strategy": ["a"] * 4,
            "realized_pnl": [100.0, 0.0, -200.0, 300.0],
            "entry_date": pd.to_datetime(["2024-01-01"] * 4),
            "exit_date": pd.to_datetime(["2024-01-02"] * 4),
        }
    )
    row = performance.trade_stats(trades).by_strategy.loc["a"]
    assert row["win_rate"] == pytest.approx(2 / 3) and row["profit_factor"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "values",
    [[0.01, 0.02, 0.0, 0.01], [0.0, 0.0, 0.0], [-0.01] * 4, [0.02, -0.01, 0.03, -0.03]],
)
def test_edge_cases_agree_with_empyrical(values):
    empyrical = pytest.importorskip("empyrical")
    r = series(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = {
            "sortino": empyrical.sortino_ratio(r),
            "vol": empyrical.annual_volatility(r),
            "mdd": empyrical.max_drawdown(r),
            "downside": empyrical.downside_risk(r),
        }
    np.testing.assert_allclose(metrics.sortino_ratio(r), theirs["sortino"], rtol=1e-12)
    np.testing.assert_allclose(metrics.annual_volatility(r), theirs["vol"], rtol=1e-12, atol=1e-17)
    np.testing.assert_allclose(metrics.max_drawdown(r), theirs["mdd"], rtol=1e-12)
    np.testing.assert_allclose(metrics.downside_deviation(r), theirs["downside"], rtol=1e-12)


def test_constant_sharpe_departs_from_empyrical_on_purpose():
    # empyrical divides by a zero std and reports +-inf; ours is undefined (NaN), so a
    # book in cash earning a fixed rate does not show an infinitely good Sharpe.
    empyrical = pytest.importorskip("empyrical")
    r = series([0.01] * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isinf(empyrical.sharpe_ratio(r))
    assert math.isnan(metrics.sharpe_ratio(r))
