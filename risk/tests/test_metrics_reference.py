"""Risk metrics on the bundled real prices: against a direct numpy computation written
here, and against empyrical, quantstats and skfolio after converting conventions.

Strategies are equal-weight baskets of real stocks, rebalanced daily (the basket's
return is the mean of its stocks' daily simple returns), 1990-2022, 8,312 days.

Convention differences found (each test states the relationship it asserts):

* empyrical: ``value_at_risk`` returns the signed quantile (a negative number), ours is
  its negation. ``conditional_value_at_risk`` averages the ``int((n-1)*cutoff) + 1``
  smallest returns; ours averages the returns <= the interpolated quantile, the same
  set unless the two order statistics around the quantile are tied. ``sharpe_ratio`` and
  ``sortino_ratio`` take a DAILY risk-free rate; ours take an annual one (/ 252).
  Sortino with zero downside: empyrical +inf, ours NaN.
* quantstats: ``value_at_risk`` and the default ``conditional_value_at_risk`` are
  PARAMETRIC (normal; ``sigma`` multiplies the std) and signed; historical CVaR needs
  ``method="historical"``. A non-zero ``rf`` is de-annualized geometrically,
  ``(1 + rf)**(1/252) - 1``, ours arithmetically, ``rf / 252``. ``win_rate`` and
  ``avg_return`` count periods, not trades, but apply our rule (zeros excluded).
* skfolio: ``value_at_risk`` is the lower beta-quantile of LOSSES without interpolation,
  one of the two order statistics ours interpolates between; ``cvar`` averages exactly
  the worst (1 - beta) probability mass, equal to ours when (1 - beta) * n is an integer.
  ``max_drawdown`` is positive; ours negative. ``Portfolio.contribution`` uses a central
  finite difference (h = 1e-5), so it agrees with our analytic contributions to its
  truncation error, not to rounding.
"""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest
import quantstats.stats as qs
import skfolio.measures as skm
from scipy.stats import norm
from skfolio import Portfolio, RiskMeasure

from portfolio.feeds import closes_frame
from risk.engine.metrics import (
    ROLLING_VOL_WINDOWS,
    annual_volatility,
    average_trade_pnl,
    drawdown_series,
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
from risk.engine.var import historical_cvar, historical_var, parametric_cvar, parametric_var

BASKETS = {
    "tech": ["AAPL", "MSFT", "AMD"],
    "staples": ["KO", "PEP", "PG", "WMT"],
    "energy": ["XOM", "CVX", "RRC"],
    "health": ["JNJ", "LLY", "MRK", "PFE", "UNH"],
}
WEIGHTS = np.array([0.4, 0.3, 0.2, 0.1])
RTOL = 1e-9
CONFIDENCES = (0.95, 0.99)


@pytest.fixture(scope="module")
def strategy_returns() -> pd.DataFrame:
    returns = closes_frame().pct_change().iloc[1:]
    return pd.DataFrame({name: returns[tickers].mean(axis=1) for name, tickers in BASKETS.items()})


@pytest.fixture(scope="module")
def tech(strategy_returns) -> pd.Series:
    return strategy_returns["tech"]


@pytest.fixture(scope="module")
def book(strategy_returns) -> pd.Series:
    """The fixed-weight portfolio of the four baskets."""
    return pd.Series(strategy_returns.to_numpy() @ WEIGHTS, index=strategy_returns.index)


# --- against numpy written out here ---------------------------------------------------


def _direct(window: np.ndarray, w: np.ndarray) -> dict[str, object]:
    """Every portfolio_risk number, straight from its textbook formula."""
    cov = np.cov(window.T, ddof=1)
    vol = math.sqrt(252 * w @ cov @ w)
    sigma = np.sqrt(252 * np.diag(cov))
    marginal = 252 * cov @ w / vol
    rp = window @ w
    nav = np.cumprod(1 + rp)
    dd = nav / np.maximum(np.maximum.accumulate(nav), 1.0) - 1
    corr = np.corrcoef(window.T)
    out = {
        "volatility": vol,
        "strategy_volatilities": sigma,
        "correlation": corr,
        "max_correlation": corr[~np.eye(len(w), dtype=bool)].max(),
        "diversification_ratio": w @ sigma / vol,
        "marginal": marginal,
        "absolute": w * marginal,
        "percent": w * marginal / vol,
        "sharpe": rp.mean() / rp.std(ddof=1) * math.sqrt(252),
        "drawdown": dd[-1],
        "max_drawdown": dd.min(),
    }
    for c in CONFIDENCES:
        q = np.quantile(rp, 1 - c)
        z = norm.ppf(1 - c)
        v = w * -np.quantile(window, 1 - c, axis=0)
        out[c] = {
            "historical_var": -q,
            "historical_cvar": -rp[rp <= q].mean(),
            "parametric_var": -(rp.mean() + z * rp.std(ddof=1)),
            "parametric_cvar": -(rp.mean() - rp.std(ddof=1) * norm.pdf(z) / (1 - c)),
            "correlated_var": math.sqrt(v @ corr @ v),
        }
    return out


@pytest.mark.parametrize("bar", [300, 4_000, 8_311])
def test_portfolio_risk_equals_direct_numpy_on_real_baskets(strategy_returns, bar):
    window = strategy_returns.to_numpy()[bar - 251 : bar + 1]
    expected = _direct(window, WEIGHTS)
    for history in (strategy_returns.iloc[: bar + 1], strategy_returns.to_numpy()[: bar + 1]):
        pr = portfolio_risk(history, WEIGHTS, lookback_days=252)
        assert pr.observations == 252
        for name in ("volatility", "strategy_volatilities", "correlation", "max_correlation"):
            np.testing.assert_allclose(getattr(pr, name), expected[name], rtol=RTOL)
        for name in ("diversification_ratio", "sharpe", "drawdown", "max_drawdown"):
            np.testing.assert_allclose(getattr(pr, name), expected[name], rtol=RTOL)
        for name in ("marginal", "absolute", "percent"):
            np.testing.assert_allclose(getattr(pr.contributions, name), expected[name], rtol=RTOL)
        for tail in (pr.tail_95, pr.tail_99):
            for name, value in expected[tail.confidence].items():
                np.testing.assert_allclose(getattr(tail, name), value, rtol=RTOL, err_msg=name)


def test_full_sample_portfolio_functions_equal_direct_numpy(strategy_returns, book):
    cov = np.cov(strategy_returns.to_numpy().T)
    vol = math.sqrt(252 * WEIGHTS @ cov @ WEIGHTS)
    assert portfolio_volatility(strategy_returns, WEIGHTS) == pytest.approx(vol, rel=RTOL)
    # w'Sw is the sample variance of the book's returns.
    assert annual_volatility(book) == pytest.approx(vol, rel=RTOL)
    sigma = np.sqrt(252 * np.diag(cov))
    dr = diversification_ratio(strategy_returns, WEIGHTS)
    assert dr == pytest.approx(WEIGHTS @ sigma / vol, rel=RTOL)
    rc = risk_contributions(strategy_returns, WEIGHTS)
    np.testing.assert_allclose(rc.absolute, WEIGHTS * (252 * cov @ WEIGHTS) / vol, rtol=RTOL)
    np.testing.assert_allclose(
        correlation_matrix(strategy_returns).to_numpy(),
        strategy_returns.corr().to_numpy(),
        rtol=RTOL,
    )


# --- empyrical -------------------------------------------------------------------------


def test_volatility_sharpe_sortino_and_drawdown_equal_empyrical(tech):
    assert annual_volatility(tech) == pytest.approx(empyrical.annual_volatility(tech), RTOL)
    for rf in (0.0, 0.03):
        # empyrical takes the daily rate: ours is annual and divided by 252.
        daily = rf / 252
        assert sharpe_ratio(tech, rf) == pytest.approx(
            empyrical.sharpe_ratio(tech, risk_free=daily), rel=RTOL
        )
        assert sortino_ratio(tech, rf) == pytest.approx(
            empyrical.sortino_ratio(tech, required_return=daily), rel=RTOL
        )
    assert max_drawdown(tech) == pytest.approx(empyrical.max_drawdown(tech), rel=RTOL)
    np.testing.assert_allclose(
        drawdown_series(tech).to_numpy(),
        empyrical.stats.drawdown_series(tech).to_numpy(),
        rtol=RTOL,
        atol=1e-15,
    )


@pytest.mark.parametrize("window", ROLLING_VOL_WINDOWS)
def test_rolling_volatility_equals_empyrical_once_the_window_is_full(tech, window):
    ours = rolling_volatility(tech, window)
    assert ours.iloc[: window - 1].isna().all()
    theirs = empyrical.roll_annual_volatility(tech, window)  # starts at the first full window
    np.testing.assert_allclose(ours.iloc[window - 1 :].to_numpy(), theirs.to_numpy(), rtol=RTOL)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_historical_var_is_empyricals_signed_quantile_negated(book, confidence):
    expected = -empyrical.value_at_risk(book, cutoff=1 - confidence)
    assert historical_var(book, confidence) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_historical_cvar_equals_empyricals_when_the_quantile_is_not_tied(book, confidence):
    # empyrical averages the k + 1 smallest, k = int((n - 1) * cutoff); ours the returns
    # <= the quantile, which lies in [x_k, x_k+1]: the same set when x_k < x_k+1.
    x = np.sort(book.to_numpy())
    k = int((x.size - 1) * (1 - confidence))
    assert x[k] < x[k + 1]
    expected = -empyrical.conditional_value_at_risk(book, cutoff=1 - confidence)
    assert historical_cvar(book, confidence) == pytest.approx(expected, rel=RTOL)


# --- quantstats ------------------------------------------------------------------------


def test_volatility_sharpe_sortino_and_drawdown_equal_quantstats(tech):
    assert annual_volatility(tech) == pytest.approx(qs.volatility(tech), rel=RTOL)
    assert sharpe_ratio(tech) == pytest.approx(qs.sharpe(tech), rel=RTOL)
    assert sortino_ratio(tech) == pytest.approx(qs.sortino(tech), rel=RTOL)
    assert max_drawdown(tech) == pytest.approx(qs.max_drawdown(tech), rel=RTOL)
    np.testing.assert_allclose(
        drawdown_series(tech).to_numpy(),
        qs.to_drawdown_series(tech).to_numpy(),
        rtol=RTOL,
        atol=1e-15,
    )
    np.testing.assert_allclose(
        rolling_volatility(tech, 30).to_numpy(),
        qs.rolling_volatility(tech, 30).to_numpy(),
        rtol=RTOL,
    )


def test_quantstats_deannualizes_the_risk_free_rate_geometrically(tech):
    # quantstats: daily = (1 + rf)^(1/252) - 1; ours: annual / 252. The same daily rate
    # gives the same ratio; the same annual rate does not.
    rf = 0.03
    as_ours = 252 * ((1 + rf) ** (1 / 252) - 1)
    assert sharpe_ratio(tech, as_ours) == pytest.approx(qs.sharpe(tech, rf=rf), rel=RTOL)
    assert sortino_ratio(tech, as_ours) == pytest.approx(qs.sortino(tech, rf=rf), rel=RTOL)
    assert sharpe_ratio(tech, rf) < qs.sharpe(tech, rf=rf)  # rf/252 > (1+rf)^(1/252) - 1


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_parametric_var_and_cvar_equal_quantstats_negated(book, confidence):
    # quantstats' value_at_risk is parametric: norm.ppf(1 - c, mean, sigma * std).
    var = qs.value_at_risk(book, sigma=1, confidence=confidence)
    assert parametric_var(book, confidence) == pytest.approx(-var, rel=RTOL)
    cvar = qs.conditional_value_at_risk(book, sigma=1, confidence=confidence)
    assert parametric_cvar(book, confidence) == pytest.approx(-cvar, rel=RTOL)
    hist = qs.conditional_value_at_risk(book, confidence=confidence, method="historical")
    assert historical_cvar(book, confidence) == pytest.approx(-hist, rel=RTOL)


def test_win_rate_and_average_follow_quantstats_rule_on_the_same_numbers(tech):
    # Same rule (positive / non-zero; mean of non-zero) applied to numbers: quantstats to
    # periods, ours to trades. The basket has zero-return days, so the exclusion matters.
    assert (tech == 0).sum() > 0
    assert win_rate(tech.to_numpy()) == pytest.approx(qs.win_rate(tech), rel=RTOL)
    assert average_trade_pnl(tech.to_numpy()) == pytest.approx(qs.avg_return(tech), rel=RTOL)


# --- skfolio ---------------------------------------------------------------------------


def test_volatility_and_drawdown_equal_skfolio(tech, book, strategy_returns):
    r = tech.to_numpy()
    assert annual_volatility(r) == pytest.approx(
        skm.standard_deviation(r) * math.sqrt(252), rel=RTOL
    )
    skfolio_dd = skm.get_drawdowns(r, compounded=True)
    np.testing.assert_allclose(drawdown_series(r), skfolio_dd, rtol=RTOL, atol=1e-15)
    assert max_drawdown(r) == pytest.approx(-skm.max_drawdown(skfolio_dd), rel=RTOL)
    assert portfolio_volatility(strategy_returns, WEIGHTS) == pytest.approx(
        skm.standard_deviation(book.to_numpy()) * math.sqrt(252), rel=RTOL
    )
    np.testing.assert_allclose(
        correlation_matrix(strategy_returns).to_numpy(),
        skm.correlation(strategy_returns.to_numpy()),
        rtol=RTOL,
    )


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_historical_cvar_equals_skfolio_when_the_tail_is_whole_days(book, confidence):
    # Last 2,000 days: (1 - c) * n = 100 or 20 days exactly, so skfolio's worst-mass
    # average takes those days whole; ours takes the returns <= the quantile, which lies
    # between x_(k-1) and x_k (k = (1 - c) n): the same days when they are not tied.
    r = book.to_numpy()[-2_000:]
    x = np.sort(r)
    k = round((1 - confidence) * r.size)
    assert x[k - 1] < x[k]
    assert historical_cvar(r, confidence) == pytest.approx(skm.cvar(r, confidence), rel=RTOL)


@pytest.mark.parametrize("n", [2_000, 8_312])
@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_skfolio_var_is_one_of_the_order_statistics_ours_interpolates(book, confidence, n):
    # Ours: -x at h = (n - 1)(1 - c), between x_floor(h) and x_floor(h)+1. skfolio: no
    # interpolation, -x_floor((1 - c) n), and floor((1 - c) n) is floor(h) or floor(h)+1.
    r = book.to_numpy()[-n:]
    x = np.sort(r)
    lo = math.floor((r.size - 1) * (1 - confidence))
    theirs = skm.value_at_risk(r, confidence)
    assert theirs in (-x[lo], -x[lo + 1])
    assert -x[lo + 1] <= historical_var(r, confidence) <= -x[lo]


def test_diversification_ratio_and_contributions_match_skfolio_portfolio(strategy_returns):
    p = Portfolio(X=strategy_returns, weights=WEIGHTS)
    dr = diversification_ratio(strategy_returns, WEIGHTS)
    assert dr == pytest.approx(p.diversification, rel=RTOL)
    # skfolio: daily std, central finite difference with h = 1e-5: relative truncation
    # error measured at 3e-11 to 7e-11 here, so 1e-8 is its bound, not a fudge of ours.
    theirs = p.contribution(measure=RiskMeasure.STANDARD_DEVIATION) * math.sqrt(252)
    ours = risk_contributions(strategy_returns, WEIGHTS).absolute
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)


def test_historical_cvar_with_ties_at_the_cut_averages_every_tied_return():
    # n = 21, c = 0.95: h = 20 * (1 - 0.95) = 1.0000000000000009, between x_1 and x_2,
    # which are tied at -0.03 (and so is x_3), so q = -0.03 and VaR = 0.03. Ours: the mean
    # of every return <= q, all three ties included: (-0.05 - 3 * 0.03) / 4 = -0.035 ->
    # CVaR 0.035. empyrical averages the int(20 * 0.05) + 1 = 2 smallest, so one tie only:
    # (-0.05 - 0.03) / 2 = -0.04 -> 0.04.
    r = np.array([-0.03, 0.01, -0.05, 0.02, -0.03] + [0.001 * k for k in range(1, 16)] + [-0.03])
    assert r.size == 21
    assert historical_var(r, 0.95) == pytest.approx(0.03, rel=1e-12)
    assert historical_cvar(r, 0.95) == pytest.approx(0.035, rel=1e-12)
    # the same as "the mean of the returns <= the cutoff np.percentile computes"
    cutoff = np.percentile(r, 100 * (1 - 0.95))
    assert historical_cvar(r, 0.95) == pytest.approx(-r[r <= cutoff].mean(), rel=1e-12)
    assert -empyrical.value_at_risk(r, cutoff=0.05) == pytest.approx(0.03, rel=1e-12)
    assert -empyrical.conditional_value_at_risk(r, cutoff=0.05) == pytest.approx(0.04, rel=1e-12)
    # n = 5, c = 0.75: h = 1 exactly, q = x_1 = -0.02, tied with x_2 and x_3: ours
    # (-0.04 - 3 * 0.02) / 4 = -0.025; empyrical int(4 * 0.25) + 1 = 2 smallest, -0.03.
    r = np.array([-0.02, 0.03, -0.02, -0.04, -0.02])
    assert historical_cvar(r, 0.75) == pytest.approx(0.025, rel=1e-12)
    assert -empyrical.conditional_value_at_risk(r, cutoff=0.25) == pytest.approx(0.03, rel=1e-12)
