"""Performance statistics: hand-worked frames (expected numbers derived in the comments),
then the same functions on the bundled real prices against empyrical and quantstats."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from reporting.engine.performance import (
    drawdown_periods,
    drawdown_series,
    monthly_returns_table,
    performance_stats,
    period_returns,
    sharpe_ratio,
    sortino_ratio,
    trade_stats,
    win_rate,
)


def series(values, start="2024-01-30") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


# Tue 30 Jan .. Mon 5 Feb 2024: r = .10, -.20, .05, 0, .10.
# Equity from 1: 1.1, .88, .924, .924, 1.0164 -> total return .0164.
# Annual return 1.0164 ** (252 / 5) - 1.
# Mean .01; deviations .09 -.21 .04 -.01 .09; squares sum .0620; var .0620 / 4 = .0155;
# vol sqrt(.0155 * 252). Sharpe .01 / sqrt(.0155) * sqrt(252).
# Downside min(r, 0): only -.2, so mean square .04 / 5 = .008; Sortino .01 * 252 /
# (sqrt(.008) * sqrt(252)) = .01 * sqrt(252) / sqrt(.008).
# Drawdown: peak 1.1 on day 0, then .88 / 1.1 - 1 = -.2 (trough), never recovered:
# duration = 4 returns from the peak to the last day. Calmar = annual / .2.
# Win rate: 3 up days of 4 that moved = .75. Profit factor (.1 + .05 + .1) / .2 = 1.25.
# Months: Jan 1.1 * .8 - 1 = -.12; Feb 1.05 * 1.1 - 1 = .155.
# Moments with divisor n=5: m2 = .0620 / 5 = .0124; m3 = (2 * .09**3 - .21**3 + .04**3
# - .01**3) / 5 = -.001548; m4 = (2 * .09**4 + .21**4 + .04**4 + .01**4) / 5 = .00041572.
# Skew G1 = m3 / m2**1.5 * sqrt(5 * 4) / 3; excess kurtosis
# G2 = ((5 + 1) m4 / m2**2 - 3 * 4) * 4 / (3 * 2).
FIVE_DAYS = series([0.10, -0.20, 0.05, 0.0, 0.10])
M2, M3, M4 = 0.0124, -0.001548, 0.00041572


def test_performance_stats_match_the_hand_worked_five_days():
    s = performance_stats(FIVE_DAYS)
    annual = 1.0164 ** (252 / 5) - 1
    assert s.n_days == 5
    assert_allclose(s.total_return, 0.0164, rtol=1e-12)
    assert_allclose(s.annual_return, annual, rtol=1e-12)
    assert_allclose(s.annual_volatility, math.sqrt(0.0155 * 252), rtol=1e-12)
    assert_allclose(s.sharpe_ratio, 0.01 / math.sqrt(0.0155) * math.sqrt(252), rtol=1e-12)
    assert_allclose(s.sortino_ratio, 0.01 * math.sqrt(252) / math.sqrt(0.008), rtol=1e-12)
    assert_allclose(s.max_drawdown, -0.2, rtol=1e-12)
    assert s.max_drawdown_duration_days == 4
    assert_allclose(s.calmar_ratio, annual / 0.2, rtol=1e-12)
    assert s.win_rate == 0.75
    assert_allclose(s.profit_factor, 1.25, rtol=1e-12)
    assert (s.best_day, s.worst_day) == (0.10, -0.20)
    assert_allclose([s.best_month, s.worst_month], [0.155, -0.12], rtol=1e-12)
    assert_allclose(s.skew, M3 / M2**1.5 * math.sqrt(20) / 3, rtol=1e-9)
    assert_allclose(s.excess_kurtosis, (6 * M4 / M2**2 - 12) * 4 / 6, rtol=1e-9)


def test_a_risk_free_rate_is_taken_as_annual_and_charged_daily():
    # rf 2.52 % a year = .0001 a day: excess returns r - .0001, mean .0099, same std.
    assert_allclose(
        sharpe_ratio(FIVE_DAYS, risk_free=0.0252), 0.0099 / math.sqrt(0.0155) * math.sqrt(252)
    )
    # Downside of r - .0001: day 4 (r = 0) now counts, -.0001; squares .2001**2 + .0001**2.
    downside = math.sqrt((0.2001**2 + 0.0001**2) / 5)
    assert_allclose(sortino_ratio(FIVE_DAYS, risk_free=0.0252), 0.0099 * math.sqrt(252) / downside)


def test_degenerate_ratios_are_nan_or_inf_not_a_crash():
    flat = series([0.0, 0.0, 0.0])
    s = performance_stats(flat)
    assert math.isnan(s.sharpe_ratio) and math.isnan(s.sortino_ratio)
    assert math.isnan(s.calmar_ratio) and math.isnan(s.win_rate)
    assert s.max_drawdown == 0 and s.max_drawdown_duration_days == 0
    # Only gains: no downside, so Sortino and the profit factor are unbounded.
    up = performance_stats(series([0.01, 0.02, 0.01]))
    assert up.sortino_ratio == math.inf and up.profit_factor == math.inf


def test_bad_returns_are_rejected_at_the_boundary():
    with pytest.raises(ValueError, match="NaN"):
        performance_stats(series([0.01, np.nan]))
    with pytest.raises(ValueError, match="-100"):
        performance_stats(series([0.01, -1.5]))
    with pytest.raises(ValueError, match="increasing"):
        performance_stats(series([0.01, 0.02]).iloc[::-1])
    with pytest.raises(ValueError, match="empty"):
        performance_stats(series([]))


# r = -.1, .2, -.5, 1.0, .1, -.2 from Mon 1 Jan 2024 (d0 .. d5).
# Equity 1 (start), .9, 1.08, .54, 1.08, 1.188, .9504.
# Runs under water: d0 (peak = starting capital, back above 1 on d1: 2 - 0 = 2 days);
# d2 (peak 1.08 on d1, trough -.5, back to exactly 1.08 on d3: 2 days);
# d5 (peak 1.188 on d4, -.2, not recovered: to the last day, 1 day).
SIX_DAYS = series([-0.1, 0.2, -0.5, 1.0, 0.1, -0.2], start="2024-01-01")


def test_drawdown_series_starts_from_one_before_the_first_return():
    expected = [-0.1, 0.0, -0.5, 0.0, 0.0, -0.2]
    assert_allclose(drawdown_series(returns=SIX_DAYS), expected, atol=1e-15)


def test_drawdown_series_of_an_equity_curve_takes_its_first_value_as_the_first_peak():
    equity = series([100.0, 90.0, 120.0, 60.0])
    assert_allclose(drawdown_series(equity=equity), [0.0, -0.1, 0.0, -0.5])
    with pytest.raises(ValueError, match="exactly one"):
        drawdown_series()


def test_drawdown_periods_lists_the_deepest_first_with_peak_trough_and_recovery():
    d = SIX_DAYS.index
    table = drawdown_periods(SIX_DAYS)
    assert list(table["peak"]) == [d[1], d[4], pd.NaT]
    assert list(table["start"]) == [d[2], d[5], d[0]]
    assert list(table["trough"]) == [d[2], d[5], d[0]]
    assert list(table["recovery"]) == [d[3], pd.NaT, d[1]]
    assert_allclose(table["depth"], [-0.5, -0.2, -0.1])
    assert list(table["duration_days"]) == [2, 1, 2]
    assert len(drawdown_periods(SIX_DAYS, top=1)) == 1
    assert performance_stats(SIX_DAYS).max_drawdown_duration_days == 2


def test_drawdown_periods_of_a_series_that_never_falls_is_empty():
    assert drawdown_periods(series([0.01, 0.02])).empty


def test_period_returns_compound_within_calendar_periods_and_label_by_last_day():
    # Jan: 1.1 * .8 - 1 = -.12 (last day Wed 31 Jan); Feb: 1.05 * 1.0 * 1.1 - 1 = .155.
    monthly = period_returns(FIVE_DAYS, "M")
    assert list(monthly.index) == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-05")]
    assert_allclose(monthly, [-0.12, 0.155], rtol=1e-12)
    assert_allclose(period_returns(FIVE_DAYS, "Y"), [0.0164], rtol=1e-12)
    assert period_returns(FIVE_DAYS, "D").equals(FIVE_DAYS)
    with pytest.raises(ValueError, match="freq"):
        period_returns(FIVE_DAYS, "W")


def test_monthly_returns_table_has_a_row_per_year_and_a_compounded_year_column():
    # 29 Dec 2023 +10 %, then the five days above: 2023 row Dec .10, Year .10;
    # 2024 row Jan -.12, Feb .155, Year .0164, other months NaN (no trading day).
    r = pd.concat([pd.Series([0.10], index=[pd.Timestamp("2023-12-29")]), FIVE_DAYS])
    table = monthly_returns_table(r)
    assert list(table.index) == [2023, 2024]
    assert list(table.columns) == [
        *"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(),
        "Year",
    ]
    assert_allclose(table.loc[2023, ["Dec", "Year"]], [0.10, 0.10])
    assert_allclose(table.loc[2024, ["Jan", "Feb", "Year"]], [-0.12, 0.155, 0.0164])
    assert table.loc[2024, "Mar":"Dec"].isna().all() and table.loc[2023, "Jan":"Nov"].isna().all()


def test_win_rate_ignores_flat_days():
    # .01, 0, -.01, .02: 2 wins of 3 days that moved (4 days in all).
    assert_allclose(win_rate(series([0.01, 0.0, -0.01, 0.02])), 2 / 3)


# Four closed trades: a +10 (1 -> 3 Jan, 2 days), a -5 (same day, 0 days), a +20
# (1 -> 11 Mar, 10 days), b 0 (1 Feb -> 10 Apr, 69 days).
# a: win rate 2 / 3, avg winner 15, avg loser -5, ratio 3, profit factor 30 / 5 = 6;
# hold days 2, 0, 10: mean 4, median 2, p25 1, p75 6.
# b: a scratch trade only, neither win nor loss: win rate NaN.
# ALL: win rate 2 / 3 (the scratch excluded), total pnl 25, hold days 0, 2, 10, 69.
TRADES = pd.DataFrame(
    {
        "strategy": ["a", "a", "b", "a"],
        "realized_pnl": [10.0, -5.0, 0.0, 20.0],
        "entry_date": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-02-01", "2024-03-01"]),
        "exit_date": pd.to_datetime(["2024-01-03", "2024-01-05", "2024-04-10", "2024-03-11"]),
    }
)


def test_trade_stats_by_strategy_match_the_hand_count():
    stats = trade_stats(TRADES)
    a = stats.by_strategy.loc["a"]
    assert (a.n_trades, a.n_winners, a.n_losers) == (3, 2, 1)
    assert_allclose(
        a[["win_rate", "avg_winner", "avg_loser", "win_loss_ratio", "profit_factor"]],
        [2 / 3, 15, -5, 3, 6],
    )
    assert_allclose(
        a[["hold_days_mean", "hold_days_median", "hold_days_p25", "hold_days_p75"]],
        [4, 2, 1, 6],
    )
    b = stats.by_strategy.loc["b"]
    assert math.isnan(b.win_rate) and math.isnan(b.profit_factor)
    everything = stats.by_strategy.loc["ALL"]
    assert_allclose(everything[["win_rate", "total_pnl", "hold_days_max"]], [2 / 3, 25, 69])
    assert list(stats.by_strategy.index) == ["a", "b", "ALL"]
    assert list(stats.hold_days) == [2, 0, 69, 10]


def test_trades_per_month_count_exits_and_fill_empty_months_with_zero():
    counts = trade_stats(TRADES).trades_per_month
    assert list(counts.index) == list(pd.date_range("2024-01-01", periods=4, freq="MS"))
    assert counts["a"].tolist() == [2, 0, 1, 0]
    assert counts["b"].tolist() == [0, 0, 0, 1]


def test_trade_stats_reject_a_trade_that_exits_before_it_enters():
    bad = TRADES.assign(exit_date=pd.to_datetime(["2023-12-01"] * 4))
    with pytest.raises(ValueError, match="entry_date <= exit_date"):
        trade_stats(bad)
    with pytest.raises(ValueError, match="lacks columns"):
        trade_stats(TRADES.drop(columns="realized_pnl"))


# --- cross-checks on the bundled real prices -------------------------------------------


@pytest.fixture(scope="module")
def real_returns() -> dict[str, pd.Series]:
    """AAPL, an equal-weight basket of the 20 stocks (rebalanced daily), and the S&P 500."""
    from portfolio.feeds import closes_frame

    closes = closes_frame()
    returns = closes.pct_change().iloc[1:]
    stocks = returns.drop(columns="SP500")
    return {
        "AAPL": returns["AAPL"].rename("AAPL"),
        "basket": stocks.mean(axis=1).rename("basket"),
        "SP500": returns["SP500"].rename("SP500"),
    }


NAMES = ["AAPL", "basket", "SP500"]


@pytest.mark.parametrize("name", NAMES)
def test_the_headline_ratios_equal_empyrical(real_returns, name):
    import empyrical as ep

    r = real_returns[name]
    rf = 0.02  # annual; empyrical takes the per-day rate, rf / 252
    s = performance_stats(r, rf=rf)
    assert_allclose(s.annual_return, ep.annual_return(r), rtol=1e-10)
    assert_allclose(s.annual_volatility, ep.annual_volatility(r), rtol=1e-12)
    assert_allclose(s.sharpe_ratio, ep.sharpe_ratio(r, risk_free=rf / 252), rtol=1e-10)
    assert_allclose(s.sortino_ratio, ep.sortino_ratio(r, required_return=rf / 252), rtol=1e-10)
    assert_allclose(s.calmar_ratio, ep.calmar_ratio(r), rtol=1e-10)
    assert_allclose(s.max_drawdown, ep.max_drawdown(r), rtol=1e-12)
    assert_allclose(s.total_return, ep.cum_returns_final(r), rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_period_returns_equal_empyrical_aggregate_returns(real_returns, name):
    import empyrical as ep

    r = real_returns[name]
    # empyrical labels by (year, month) / year; ours by the period's last trading day.
    monthly, yearly = period_returns(r, "M"), period_returns(r, "Y")
    assert_allclose(monthly, ep.aggregate_returns(r, "monthly"), rtol=1e-10)
    assert_allclose(yearly, ep.aggregate_returns(r, "yearly"), rtol=1e-10)
    assert list(yearly.index.year) == list(ep.aggregate_returns(r, "yearly").index)


@pytest.mark.parametrize("name", NAMES)
def test_the_distribution_statistics_equal_quantstats(real_returns, name):
    qs = pytest.importorskip("quantstats")
    r = real_returns[name]
    s = performance_stats(r)
    # Both drop flat days from the win rate; on real data they exist (AAPL has 277), so
    # counting them as losses (r > 0 over all days) would give a lower number.
    assert_allclose(s.win_rate, qs.stats.win_rate(r), rtol=1e-12)
    # quantstats counts r >= 0 as gains: zeros add nothing, so the sums agree.
    assert_allclose(s.profit_factor, qs.stats.profit_factor(r), rtol=1e-12)
    # Both are pandas' bias-corrected sample skew and *excess* kurtosis.
    assert_allclose(s.skew, qs.stats.skew(r), rtol=1e-10)
    assert_allclose(s.excess_kurtosis, qs.stats.kurtosis(r), rtol=1e-10)
    assert_allclose([s.best_day, s.worst_day], [qs.stats.best(r), qs.stats.worst(r)])
    # quantstats' aggregate "ME" is year-and-month; its "M" is not recognised (returns the
    # daily series) and "month" pools each calendar month across years.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best_month = qs.stats.best(r, aggregate="ME")
        worst_month = qs.stats.worst(r, aggregate="ME")
    assert_allclose([s.best_month, s.worst_month], [best_month, worst_month], rtol=1e-10)


def test_aapl_has_flat_days_so_the_win_rate_convention_matters(real_returns):
    r = real_returns["AAPL"]
    assert (r == 0).sum() == 277
    assert performance_stats(r).win_rate > (r > 0).mean() + 0.01


@pytest.mark.parametrize("name", NAMES)
def test_monthly_returns_table_equals_quantstats_monthly_returns(real_returns, name):
    qs = pytest.importorskip("quantstats")
    r = real_returns[name]
    ours = monthly_returns_table(r)
    theirs = qs.stats.monthly_returns(r)  # JAN..DEC, EOY; string years; missing month = 0
    assert not ours.isna().any().any()  # 1990-2022 has every month, so no 0-vs-NaN case
    assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-10)
    assert list(ours.index) == [int(y) for y in theirs.index]


@pytest.mark.parametrize("name", NAMES)
def test_drawdown_periods_equal_quantstats_drawdown_details(real_returns, name):
    qs = pytest.importorskip("quantstats")
    r = real_returns[name]
    ours = drawdown_periods(r, top=None).sort_values("start").reset_index(drop=True)
    theirs = qs.stats.drawdown_details(qs.stats.to_drawdown_series(r))
    assert len(ours) == len(theirs) > 50
    assert list(ours["start"].dt.strftime("%Y-%m-%d")) == list(theirs["start"])
    assert list(ours["trough"].dt.strftime("%Y-%m-%d")) == list(theirs["valley"])
    # quantstats' "end" is the last day under water; ours is the recovery day, the next
    # trading day (or, not recovered, NaT where quantstats puts the last day).
    position = {d: i for i, d in enumerate(r.index)}
    last_under = [
        r.index[position[rec] - 1] if not pd.isna(rec) else r.index[-1] for rec in ours["recovery"]
    ]
    assert [d.strftime("%Y-%m-%d") for d in last_under] == list(theirs["end"])
    # quantstats reports depth in percent.
    assert_allclose(ours["depth"] * 100, theirs["max drawdown"], rtol=1e-10)
