"""Risk metrics on tiny hand-worked examples, degenerate cases and invariants.

Every expected number is derived in the comment above it. Cross-checks against the
field's libraries and the real bundled data are in ``test_metrics_reference.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from risk.engine.exposure import (
    leverage,
    net_positions,
    portfolio_leverage,
    strategy_exposure,
    ticker_concentration,
    top_concentration,
)
from risk.engine.metrics import (
    annual_volatility,
    average_trade_pnl,
    drawdown_series,
    max_adverse_excursion,
    max_drawdown,
    rolling_volatility,
    sharpe_ratio,
    sortino_ratio,
    win_rate,
)
from risk.engine.portfolio_risk import (
    correlation_matrix,
    diversification_ratio,
    portfolio_risk,
    portfolio_volatility,
    risk_contributions,
)
from risk.engine.var import (
    correlated_var,
    historical_cvar,
    historical_var,
    linear_quantile,
    parametric_cvar,
    parametric_var,
)

# r = [1%, -1%, 2%, 0%]: mean 0.005, deviations (.005, -.015, .015, -.005), squares sum to
# 5e-4, sample variance 5e-4 / 3, annualized variance 252 * 5e-4 / 3 = 0.042.
R = np.array([0.01, -0.01, 0.02, 0.00])
SQRT252 = math.sqrt(252)


# --- one return series ---------------------------------------------------------------


def test_volatility_is_the_annualized_sample_std():
    # sqrt(0.042) = 0.2049390...
    assert annual_volatility(R) == pytest.approx(math.sqrt(0.042), rel=1e-12)


def test_volatility_is_nan_below_two_observations_and_zero_when_flat():
    assert math.isnan(annual_volatility([0.01]))
    assert math.isnan(annual_volatility([]))
    assert annual_volatility([0.001] * 7) == 0.0


def test_rolling_volatility_is_nan_until_the_window_is_full():
    # Window 3: [.01, -.01, .02] has mean .006667, squared deviations summing to 4.6667e-4,
    # variance 2.3333e-4, annualized 0.0588; [-.01, .02, 0] is its mirror image: the same.
    s = pd.Series(R, index=pd.date_range("2024-01-01", periods=4, freq="B"), name="A")
    vol = rolling_volatility(s, 3)
    assert vol.index.equals(s.index) and vol.name == "A"
    np.testing.assert_allclose(vol.to_numpy(), [np.nan, np.nan, 0.0588**0.5, 0.0588**0.5])


def test_rolling_volatility_rejects_a_window_below_two():
    with pytest.raises(ValueError, match="window"):
        rolling_volatility(pd.Series(R), 1)


def test_drawdown_is_a_negative_fraction_of_the_running_peak():
    # NAV 1.1, 0.88, 0.924, 1.155; peak 1.1, 1.1, 1.1, 1.155 -> 0, -0.2, -0.16, 0.
    r = np.array([0.10, -0.20, 0.05, 0.25])
    np.testing.assert_allclose(drawdown_series(r), [0, -0.2, -0.16, 0], atol=1e-15)
    assert max_drawdown(r) == pytest.approx(-0.2, rel=1e-12)


def test_a_loss_on_the_first_day_is_a_drawdown_from_the_initial_nav():
    # NAV 0.9, 0.945 against the starting peak 1.0.
    s = pd.Series([-0.10, 0.05], index=pd.date_range("2024-01-01", periods=2))
    dd = drawdown_series(s)
    assert isinstance(dd, pd.Series) and dd.index.equals(s.index)
    np.testing.assert_allclose(dd.to_numpy(), [-0.10, -0.055])
    assert math.isnan(max_drawdown([]))


def test_sharpe_is_annualized_mean_excess_over_its_sample_std():
    # rf 0: 0.005 / sqrt(5e-4/3) * sqrt(252) = 0.005 * sqrt(6000 * 252) = 6.148170.
    assert sharpe_ratio(R) == pytest.approx(0.005 * math.sqrt(6000 * 252), rel=1e-12)
    # rf 25.2 % a year = 0.001 a day: the mean excess is 0.004, the std unchanged.
    assert sharpe_ratio(R, risk_free=0.252) == pytest.approx(0.004 * math.sqrt(6000 * 252))


def test_sharpe_is_nan_for_too_few_days_or_no_dispersion():
    assert math.isnan(sharpe_ratio([0.01]))
    assert math.isnan(sharpe_ratio([0.01] * 5))


def test_sortino_uses_the_downside_deviation_over_all_days():
    # rf 0: min(r, 0) = [0, -.01, 0, 0] -> mean square 1e-4 / 4, dd = 0.005;
    # 0.005 / 0.005 * sqrt(252).
    assert sortino_ratio(R) == pytest.approx(SQRT252, rel=1e-12)
    # rf 0.252 -> daily 0.001: x = [.009, -.011, .019, -.001], mean 0.004;
    # min(x, 0)^2 = [0, 1.21e-4, 0, 1e-6] -> mean 3.05e-5.
    expected = 0.004 / math.sqrt(3.05e-5) * SQRT252
    assert sortino_ratio(R, risk_free=0.252) == pytest.approx(expected, rel=1e-12)


def test_sortino_is_infinite_without_a_day_below_target_and_nan_when_undefined():
    # No downside and a positive mean: nothing to penalise, +inf as empyrical.
    assert sortino_ratio([0.01, 0.02, 0.0]) == math.inf
    # No downside and no mean excess: 0 / 0.
    assert math.isnan(sortino_ratio([0.0, 0.0, 0.0]))
    assert math.isnan(sortino_ratio([-0.01]))


# --- trades ----------------------------------------------------------------------------


def test_win_rate_and_average_trade_pnl_ignore_zero_pnl_fills():
    # Non-zero: 120, -40, 60, -20 -> 2 wins of 4; mean (120 - 40 + 60 - 20) / 4 = 30.
    pnls = [0.0, 120.0, -40.0, 0.0, 60.0, -20.0]
    assert win_rate(pnls) == 0.5
    assert average_trade_pnl(pnls) == 30.0


def test_win_rate_is_nan_without_closed_trades():
    assert math.isnan(win_rate([0.0, 0.0]))
    assert math.isnan(average_trade_pnl([]))
    with pytest.raises(ValueError, match="finite"):
        win_rate([1.0, math.nan])


CLOSES = pd.Series(
    [100.0, 97.0, 103.0, 95.0, 110.0],
    index=pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]),
)


def test_mae_of_a_long_is_the_worst_close_below_entry():
    # Closes 100, 97, 103, 95 from entry through exit: worst (100 - 95) / 100 = 0.05.
    mae = max_adverse_excursion(
        CLOSES, entry_date="2024-01-02", exit_date="2024-01-05", side=1, entry_price=100.0
    )
    assert mae == pytest.approx(0.05)
    # Still open: 110 is added, the worst is still 95.
    open_mae = max_adverse_excursion(
        CLOSES, entry_date="2024-01-02", exit_date=None, side=1, entry_price=100.0
    )
    assert open_mae == pytest.approx(0.05)


def test_mae_of_a_short_is_the_worst_close_above_entry():
    # Short at 98 on 01-03 through 01-04: closes 97, 103 -> (103 - 98) / 98.
    mae = max_adverse_excursion(
        CLOSES, entry_date="2024-01-03", exit_date="2024-01-04", side=-1, entry_price=98.0
    )
    assert mae == pytest.approx(5 / 98)


def test_mae_is_zero_when_the_price_never_moved_against_the_trade():
    # Long at 90, only close 110 -> excursion +22 %, never adverse.
    mae = max_adverse_excursion(
        CLOSES, entry_date="2024-01-08", exit_date=None, side=1, entry_price=90.0
    )
    assert mae == 0.0


def test_mae_rejects_bad_inputs():
    with pytest.raises(ValueError, match="side"):
        max_adverse_excursion(
            CLOSES, entry_date="2024-01-02", exit_date=None, side=0, entry_price=100.0
        )
    with pytest.raises(ValueError, match="no closes"):
        max_adverse_excursion(
            CLOSES, entry_date="2025-01-02", exit_date=None, side=1, entry_price=100.0
        )


# --- VaR and CVaR ----------------------------------------------------------------------

# Sorted, n = 5: the (1 - c) quantile sits at h = 4 * (1 - c) between order statistics.
TAIL = np.array([-0.05, -0.02, 0.00, 0.01, 0.03])


def test_historical_var_interpolates_between_order_statistics():
    # c 0.95: h = 0.2 -> q = -0.05 + 0.2 * 0.03 = -0.044.
    assert historical_var(TAIL, 0.95) == pytest.approx(0.044, rel=1e-12)
    # c 0.99: h = 0.04 -> q = -0.05 + 0.04 * 0.03 = -0.0488.
    assert historical_var(TAIL, 0.99) == pytest.approx(0.0488, rel=1e-12)
    # c 0.75: h = 1 -> q = -0.02 exactly.
    assert historical_var(TAIL, 0.75) == pytest.approx(0.02, rel=1e-12)


def test_historical_cvar_averages_the_returns_at_or_below_the_quantile():
    # c 0.95: only -0.05 <= -0.044. c 0.75: -0.05 and -0.02 <= -0.02 -> mean -0.035.
    assert historical_cvar(TAIL, 0.95) == pytest.approx(0.05, rel=1e-12)
    assert historical_cvar(TAIL, 0.75) == pytest.approx(0.035, rel=1e-12)


def test_parametric_var_and_cvar_use_the_normal_quantile_and_density():
    # mean -0.006; deviations -.044, -.014, .006, .016, .036, squares summing to 3.72e-3,
    # sample std sqrt(9.3e-4). z95 = -1.6448536269514722, phi(z95) = 0.10313564037537128.
    mean, sd = -0.006, math.sqrt(9.3e-4)
    z, phi = -1.6448536269514722, 0.10313564037537128
    assert parametric_var(TAIL, 0.95) == pytest.approx(-(mean + z * sd), rel=1e-12)  # .05616
    assert parametric_cvar(TAIL, 0.95) == pytest.approx(-(mean - sd * phi / 0.05), rel=1e-12)


def test_var_is_nan_below_two_observations_and_rejects_bad_confidence():
    for f in (historical_var, historical_cvar, parametric_var, parametric_cvar):
        assert math.isnan(f([0.01], 0.95))
        with pytest.raises(ValueError, match="confidence"):
            f(TAIL, 95)


def test_correlated_var_is_the_square_root_of_the_weighted_quadratic_form():
    # v = [.5 * .02, .5 * .03] = [.01, .015]; v'Cv = 1e-4 + 2.25e-4 + 2 * .5 * .01 * .015
    # = 4.75e-4. Perfect correlation adds the VaRs (0.025); -1 subtracts them (0.005).
    assert correlated_var([0.02, 0.03], [0.5, 0.5], [[1, 0.5], [0.5, 1]]) == pytest.approx(
        math.sqrt(4.75e-4)
    )
    assert correlated_var([0.02, 0.03], [0.5, 0.5], [[1, 1], [1, 1]]) == pytest.approx(0.025)
    assert correlated_var([0.02, 0.03], [0.5, 0.5], [[1, -1], [-1, 1]]) == pytest.approx(0.005)


def test_correlated_var_leaves_out_a_flat_strategy_with_nan_correlations():
    corr = [[1.0, math.nan], [math.nan, math.nan]]
    assert correlated_var([0.02, 0.0], [0.5, 0.5], corr) == pytest.approx(0.01)


def test_correlated_var_is_exact_for_zero_mean_normal_strategies():
    # VaR_i = -z sigma_i, so sqrt(v'Cv) = -z sqrt(w' S w): the parametric portfolio VaR.
    sigma, corr, w = np.array([0.01, 0.02]), np.array([[1, 0.3], [0.3, 1]]), np.array([0.6, 0.4])
    z = -2.3263478740408408  # Phi^-1(0.01)
    cov = corr * np.outer(sigma, sigma)
    expected = -z * math.sqrt(w @ cov @ w)
    assert correlated_var(-z * sigma, w, corr) == pytest.approx(expected, rel=1e-12)


# --- portfolio of strategies -----------------------------------------------------------

# A = R (mean .005, deviations .005, -.015, .015, -.005); B mean .005, deviations
# .015, -.005, .005, -.015. Sums of products: AA = BB = 5e-4, AB = 4 * 7.5e-5 = 3e-4, so
# S = [[5e-4, 3e-4], [3e-4, 5e-4]] / 3, correlation 0.6, each annualized vol sqrt(0.042).
TWO = pd.DataFrame(
    {"A": R, "B": [0.02, 0.00, 0.01, -0.01]}, index=pd.date_range("2024-01-01", periods=4)
)
W = np.array([0.75, 0.25])
# Annualized: S_ann = 84 * [[5e-4, 3e-4], [3e-4, 5e-4]]; S_ann w = 84 * [4.5e-4, 3.5e-4]
# = [0.0378, 0.0294]; w' S_ann w = .75 * .0378 + .25 * .0294 = 0.0357.
VOL = math.sqrt(0.0357)


def test_portfolio_volatility_is_the_annualized_quadratic_form():
    assert portfolio_volatility(TWO, W) == pytest.approx(VOL, rel=1e-12)
    # Weights keyed by strategy name align to the columns whatever their order.
    assert portfolio_volatility(TWO, {"B": 0.25, "A": 0.75}) == pytest.approx(VOL, rel=1e-12)


def test_correlation_matrix_is_labelled_by_strategy():
    corr = correlation_matrix(TWO)
    assert list(corr.index) == ["A", "B"] and list(corr.columns) == ["A", "B"]
    np.testing.assert_allclose(corr.to_numpy(), [[1, 0.6], [0.6, 1]], rtol=1e-12)


def test_diversification_ratio_is_weighted_vol_over_portfolio_vol():
    # (.75 + .25) * sqrt(.042) / sqrt(.0357) = sqrt(.042 / .0357) = 1.0846523.
    assert diversification_ratio(TWO, W) == pytest.approx(math.sqrt(0.042 / 0.0357), rel=1e-12)


def test_risk_contributions_split_the_portfolio_vol():
    # marginal = [.0378, .0294] / vol; absolute = w * marginal; percent = [.02835, .00735]
    # / .0357 = [27/34, 7/34].
    rc = risk_contributions(TWO, W)
    np.testing.assert_allclose(rc.marginal, np.array([0.0378, 0.0294]) / VOL, rtol=1e-12)
    np.testing.assert_allclose(rc.absolute, np.array([0.02835, 0.00735]) / VOL, rtol=1e-12)
    np.testing.assert_allclose(rc.percent, [27 / 34, 7 / 34], rtol=1e-12)
    assert rc.absolute.sum() == pytest.approx(VOL, rel=1e-12)


def test_portfolio_risk_gathers_every_number_for_one_bar():
    # rp = .75 A + .25 B = [.0125, -.0075, .0175, -.0025]; NAV 1.0125, 1.00490625,
    # 1.02249211, 1.01993588 -> drawdowns 0, -.0075, 0, -.0025.
    # Historical: sorted rp [-.0075, -.0025, .0125, .0175], h = 3 * .05 = .15 ->
    # q95 = -.0075 + .15 * .005 = -.00675 (CVaR: only -.0075); h = .03 -> q99 = -.00735.
    # Each strategy sorts to [-.01, 0, .01, .02] -> VaR95_i = .0085; v = [.75, .25] * .0085.
    pr = portfolio_risk(TWO, W)
    assert pr.strategies == ("A", "B") and pr.observations == 4
    assert pr.volatility == pytest.approx(VOL, rel=1e-12)
    np.testing.assert_allclose(pr.strategy_volatilities, [0.042**0.5] * 2, rtol=1e-12)
    assert pr.max_correlation == pytest.approx(0.6, rel=1e-12)
    assert pr.correlation_frame.loc["A", "B"] == pytest.approx(0.6, rel=1e-12)
    assert pr.diversification_ratio == pytest.approx(math.sqrt(0.042 / 0.0357), rel=1e-12)
    np.testing.assert_allclose(pr.contributions.percent, [27 / 34, 7 / 34], rtol=1e-12)
    rp = np.array([0.0125, -0.0075, 0.0175, -0.0025])
    assert pr.sharpe == pytest.approx(rp.mean() / rp.std(ddof=1) * SQRT252, rel=1e-12)
    assert pr.drawdown == pytest.approx(1.0125 * 0.9925 * 1.0175 * 0.9975 / 1.02249211 - 1, 1e-6)
    assert pr.max_drawdown == pytest.approx(-0.0075, rel=1e-12)
    assert pr.tail_95.historical_var == pytest.approx(0.00675, rel=1e-12)
    assert pr.tail_95.historical_cvar == pytest.approx(0.0075, rel=1e-12)
    assert pr.tail_99.historical_var == pytest.approx(0.00735, rel=1e-12)
    v = np.array([0.75, 0.25]) * 0.0085
    expected = math.sqrt(v[0] ** 2 + v[1] ** 2 + 2 * 0.6 * v[0] * v[1])
    assert pr.tail_95.correlated_var == pytest.approx(expected, rel=1e-12)


def test_portfolio_risk_agrees_with_the_single_metric_functions():
    rp = TWO.to_numpy() @ W
    pr = portfolio_risk(TWO, W)
    for tail in (pr.tail_95, pr.tail_99):
        c = tail.confidence
        assert tail.historical_var == historical_var(rp, c)
        assert tail.historical_cvar == historical_cvar(rp, c)
        assert tail.parametric_var == pytest.approx(parametric_var(rp, c), rel=1e-14)
        assert tail.parametric_cvar == pytest.approx(parametric_cvar(rp, c), rel=1e-14)


def test_portfolio_risk_uses_only_the_trailing_window():
    # With a 3-day lookback the first row cannot matter: changing it changes nothing.
    changed = TWO.copy()
    changed.iloc[0] = [0.5, -0.5]
    a, b = portfolio_risk(TWO, W, lookback_days=3), portfolio_risk(changed, W, lookback_days=3)
    assert a.observations == 3
    assert a.volatility == b.volatility and a.tail_95 == b.tail_95


def test_fewer_than_two_observations_give_nan_not_an_exception():
    pr = portfolio_risk(TWO.iloc[:1], W)
    assert pr.observations == 1
    assert math.isnan(pr.volatility) and math.isnan(pr.diversification_ratio)
    assert np.isnan(pr.contributions.absolute).all() and np.isnan(pr.correlation).all()
    assert math.isnan(pr.sharpe) and math.isnan(pr.tail_99.historical_var)
    assert math.isnan(pr.max_correlation) and math.isnan(pr.tail_95.correlated_var)


def test_a_perfect_hedge_has_zero_vol_and_an_undefined_diversification_ratio():
    # B's deviations are exactly minus A's, so .5 A + .5 B = 0.005 every day.
    hedge = pd.DataFrame({"A": R, "B": [0.0, 0.02, -0.01, 0.01]})
    pr = portfolio_risk(hedge, [0.5, 0.5])
    assert pr.volatility == 0.0
    assert math.isnan(pr.diversification_ratio)
    assert np.isnan(pr.contributions.percent).all()
    assert pr.max_correlation == pytest.approx(-1.0)


def test_a_flat_strategy_has_nan_correlations_but_the_rest_are_measured():
    frame = TWO.assign(CASH=0.0)
    pr = portfolio_risk(frame, [0.5, 0.25, 0.25])
    assert np.isnan(pr.correlation[2]).all()
    assert pr.max_correlation == pytest.approx(0.6)
    assert math.isfinite(pr.tail_95.correlated_var)


def test_portfolio_risk_rejects_misaligned_or_missing_inputs():
    with pytest.raises(ValueError, match="weights"):
        portfolio_risk(TWO, [1.0])
    with pytest.raises(ValueError, match="weights keys"):
        portfolio_risk(TWO, {"A": 1.0, "C": 0.0})
    with pytest.raises(ValueError, match="finite"):
        portfolio_risk(TWO.assign(A=[0.01, np.nan, 0.0, 0.0]), W)


def test_results_are_read_only():
    pr = portfolio_risk(TWO, W)
    with pytest.raises(ValueError):
        pr.weights[0] = 1.0


# --- exposure, netting, concentration -------------------------------------------------


def test_strategy_exposure_counts_and_weighs_positions():
    # X 10 * 100 = 1000 long; Y -5 * 50 * multiplier 2 = -500 short; Z flat.
    # gross 1500, net 500; equity 1000 -> leverage 1.5, largest weight 1.0.
    exp = strategy_exposure(
        {"X": 10, "Y": -5, "Z": 0}, {"X": 100.0, "Y": 50.0}, 1000.0, multipliers={"Y": 2}
    )
    assert (exp.gross_exposure, exp.net_exposure) == (1500.0, 500.0)
    assert (exp.leverage, exp.position_count, exp.largest_position_weight) == (1.5, 2, 1.0)


def test_leverage_at_zero_equity_is_zero_when_empty_and_nan_when_exposed():
    assert leverage(0.0, 0.0) == 0.0
    assert math.isnan(leverage(500.0, 0.0))
    assert math.isnan(leverage(500.0, -10.0))
    empty = strategy_exposure({}, {}, 0.0)
    assert empty.leverage == 0.0 and empty.largest_position_weight == 0.0


def test_strategy_exposure_needs_a_price_for_every_held_ticker():
    with pytest.raises(ValueError, match="no price"):
        strategy_exposure({"X": 1}, {}, 100.0)


def test_netting_long_10_against_short_5_leaves_net_long_5_and_gross_15():
    # The example at a price of 100: net quantity 5 (value 500); the strategies
    # hold 1000 + 500 = 1500 gross, the netted book 500; 2 strategy positions, 1 net.
    netted = net_positions({"A": {"X": 10}, "B": {"X": -5}}, {"X": 100.0})
    assert netted.net_quantity == {"X": 5} and netted.net_value == {"X": 500.0}
    assert netted.gross_exposure == 1500.0 and netted.netted_gross_exposure == 500.0
    assert netted.net_exposure == 500.0
    assert (netted.gross_count, netted.net_count) == (2, 1)
    # Portfolio equity 1000: gross 1.5, netted gross 0.5, net 0.5.
    lev = portfolio_leverage(netted, 1000.0)
    assert (lev.gross, lev.netted_gross, lev.net) == (1.5, 0.5, 0.5)


def test_netting_applies_contract_multipliers_and_drops_flat_tickers():
    # ES: 2 - 1 = 1 contract * 4000 * 50 = 200,000 net; gross (2 + 1) * 200,000 = 600,000.
    # Y: 0.1 + 0.2 - 0.3 is rounding residue, not a position. Z short 3 * 10 = -30.
    netted = net_positions(
        {"A": {"ES": 2, "Y": 0.1 + 0.2, "Z": -3}, "B": {"ES": -1, "Y": -0.3}},
        {"ES": 4000.0, "Y": 10.0, "Z": 10.0},
        multipliers={"ES": 50},
    )
    assert netted.net_value == {"ES": 200_000.0, "Z": -30.0}
    assert netted.gross_exposure == pytest.approx(600_000 + 3 + 3 + 30)
    assert netted.netted_gross_exposure == 200_030.0
    assert netted.net_exposure == 199_970.0
    assert (netted.gross_count, netted.net_count) == (5, 2)


def test_concentration_is_net_value_over_equity_and_top5_sums_the_largest():
    # |net| / 1000: X .5, Y .3, Z .1, W .05, V .02, U .01; top 5 = .97 (U left out).
    values = {"X": 5, "Y": -3, "Z": 1, "W": 0.5, "V": 0.2, "U": 0.1}
    netted = net_positions({"A": values}, dict.fromkeys(values, 100.0))
    conc = ticker_concentration(netted, 1000.0)
    assert list(conc) == ["X", "Y", "Z", "W", "V", "U"]
    np.testing.assert_allclose(list(conc.values()), [0.5, 0.3, 0.1, 0.05, 0.02, 0.01])
    assert top_concentration(conc) == pytest.approx(0.97)
    assert top_concentration({}) == 0.0


# --- invariants ------------------------------------------------------------------------

# Realistic grids: returns in steps of 1e-6 (0.01 bp) and weights in basis points. Raw
# floats would include values like 1e-160, whose squares underflow: not a portfolio.
_daily = st.integers(-200_000, 200_000).map(lambda i: i / 1e6)


@st.composite
def _returns_and_weights(draw, long_only: bool):
    k = draw(st.integers(1, 5))
    t = draw(st.integers(3, 40))
    r = draw(arrays(float, (t, k), elements=_daily))
    low = 0 if long_only else -10_000
    w = draw(arrays(float, (k,), elements=st.integers(low, 10_000).map(lambda i: i / 1e4)))
    return r, w


@settings(max_examples=200, deadline=None)
@given(_returns_and_weights(long_only=False))
def test_risk_contributions_sum_to_portfolio_vol(case):
    r, w = case
    vol = portfolio_volatility(r, w)
    rc = risk_contributions(r, w)
    if vol > 0:
        assert rc.absolute.sum() == pytest.approx(vol, rel=1e-9, abs=1e-15)
        assert rc.percent.sum() == pytest.approx(1.0, rel=1e-9)
    else:
        assert np.isnan(rc.absolute).all()


@settings(max_examples=200, deadline=None)
@given(_returns_and_weights(long_only=True))
def test_diversification_ratio_is_at_least_one_for_long_only_weights(case):
    # Cauchy-Schwarz on the sample covariance: w'Sw <= (w . sigma)^2 when w >= 0. The
    # 1e-12 allows for rounding in two separately computed square roots.
    r, w = case
    dr = diversification_ratio(r, w)
    assert math.isnan(dr) or dr >= 1.0 - 1e-12


@settings(max_examples=300, deadline=None)
@given(arrays(float, st.integers(2, 60), elements=_daily))
def test_historical_var99_is_at_least_var95_and_cvar_at_least_var(r):
    assert historical_var(r, 0.99) >= historical_var(r, 0.95)
    for c in (0.95, 0.99):
        assert historical_cvar(r, c) >= historical_var(r, c) - 1e-15


@settings(max_examples=300, deadline=None)
@given(
    arrays(float, st.integers(1, 60), elements=st.floats(-1e3, 1e3)),
    st.floats(0.0, 1.0),
)
def test_linear_quantile_is_numpys_default_quantile_bit_for_bit(r, p):
    assert linear_quantile(np.sort(r), p) == np.quantile(r, p)
