"""Correlation regimes (risk.engine.regimes): rolling average correlation, Jennrich's
test, the threshold flag and the alert messages. No database."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, chi2

from risk.engine.regimes import (
    jennrich_statistic,
    regime_check,
    regime_events,
    rolling_average_correlation,
)

NAMES = ["trend", "carry", "value", "momo"]


def _series(seed: int, *, rows: int = 120, k: int = 4, factor: bool = False) -> np.ndarray:
    """``rows`` x ``k`` daily returns (1 % vol): independent, or with one common factor
    loading sqrt(0.6) on every strategy, which gives pairwise correlation 0.6."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((rows, k))
    if factor:
        common = rng.standard_normal((rows, 1))
        noise = np.sqrt(0.6) * common + np.sqrt(0.4) * noise
    return 0.01 * noise


def _frame(values: np.ndarray) -> pd.DataFrame:
    index = pd.bdate_range("2024-01-01", periods=len(values))
    return pd.DataFrame(values, index=index, columns=NAMES[: values.shape[1]])


def _break(seed: int) -> pd.DataFrame:
    return _frame(np.vstack([_series(seed), _series(seed + 10_000, factor=True)]))


def _quiet(seed: int) -> pd.DataFrame:
    return _frame(_series(seed, rows=240))


def _upper_mean(r: np.ndarray) -> float:
    return float(r[np.triu_indices(r.shape[0], k=1)].mean())


# rolling_average_correlation


def test_it_averages_the_pairwise_correlations_of_a_hand_frame():
    # a = b = 1, 2, 3 and c = 3, 2, 1: r_ab = 1, r_ac = r_bc = -1, mean (1 - 1 - 1) / 3
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0], "c": [3.0, 2.0, 1.0]})
    out = rolling_average_correlation(returns=frame, window=3)
    assert np.isnan(out.iloc[:2]).all()
    np.testing.assert_allclose(out.iloc[2], -1.0 / 3.0, atol=1e-12)


def test_it_matches_np_corrcoef_on_every_window():
    values = np.random.default_rng(3).standard_normal((30, 5)) * 0.02 + 0.001
    frame = pd.DataFrame(values, columns=list("abcde"))
    out = rolling_average_correlation(returns=frame, window=7)
    expected = [_upper_mean(np.corrcoef(values[t - 6 : t + 1].T)) for t in range(6, 30)]
    np.testing.assert_allclose(out.iloc[6:].to_numpy(), expected, rtol=0, atol=1e-12)
    assert out.iloc[:6].isna().all()


def test_a_column_constant_in_a_window_is_left_out_of_that_window():
    # c is flat over the first 4 rows: window 0..3 averages only r_ab (= 1: b = 2a);
    # window 1..4 sees c move, so all three pairs count there
    frame = pd.DataFrame(
        {
            "a": [0.01, -0.02, 0.03, 0.00, 0.01],
            "b": [0.02, -0.04, 0.06, 0.00, 0.02],
            "c": [0.00, 0.00, 0.00, 0.00, 0.05],
        }
    )
    out = rolling_average_correlation(returns=frame, window=4)
    np.testing.assert_allclose(out.iloc[3], 1.0, atol=1e-12)
    expected = _upper_mean(np.corrcoef(frame.to_numpy()[1:5].T))
    np.testing.assert_allclose(out.iloc[4], expected, atol=1e-12)


def test_fewer_than_two_varying_columns_give_nan():
    frame = pd.DataFrame({"a": [0.01, -0.02, 0.03, 0.01], "b": [0.0, 0.0, 0.0, 0.0]})
    assert rolling_average_correlation(returns=frame, window=3).isna().all()


def test_rows_with_any_nan_are_dropped_before_the_windows():
    values = np.random.default_rng(4).standard_normal((12, 3))
    frame = pd.DataFrame(values, columns=list("abc"))
    holed = frame.copy()
    holed.iloc[5, 1] = np.nan
    out = rolling_average_correlation(returns=holed, window=4)
    assert 5 not in out.index and len(out) == 11
    kept = np.delete(values, 5, axis=0)
    np.testing.assert_allclose(out.iloc[-1], _upper_mean(np.corrcoef(kept[-4:].T)), atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 2}, "at least 3"),
        ({"window": 50}, "too few rows"),
        ({"window": 3.5}, "integer"),
    ],
)
def test_bad_windows_raise_a_clear_value_error(kwargs, message):
    frame = pd.DataFrame(np.random.default_rng(5).standard_normal((10, 3)))
    with pytest.raises(ValueError, match=message):
        rolling_average_correlation(returns=frame, **kwargs)


def test_bad_frames_raise_a_clear_value_error():
    with pytest.raises(ValueError, match="at least 2 strategy columns"):
        rolling_average_correlation(returns=pd.DataFrame({"a": [1.0, 2.0, 3.0]}), window=3)
    with pytest.raises(ValueError, match="inf"):
        rolling_average_correlation(
            returns=pd.DataFrame({"a": [1.0, np.inf, 3.0], "b": [1.0, 2.0, 0.0]}), window=3
        )
    with pytest.raises(ValueError, match="numeric"):
        rolling_average_correlation(
            returns=pd.DataFrame({"a": ["x", "y", "z"], "b": [1.0, 2.0, 0.0]}), window=3
        )
    with pytest.raises(ValueError, match="DataFrame"):
        rolling_average_correlation(returns=np.zeros((5, 2)), window=3)


# Jennrich's statistic


def test_identical_samples_give_a_zero_statistic():
    r = np.corrcoef(np.random.default_rng(6).standard_normal((50, 4)).T)
    stat, p = jennrich_statistic(r1=r, n1=50, r2=r, n2=50)
    assert stat == 0.0 and p == 1.0


def test_two_strategies_reduce_to_the_delta_method_wald_test():
    # k = 2 works out by hand to chi2 = c (r1 - r2)^2 / (1 - rbar^2)^2 with one df.
    # n1 = n2 = 100: c = 50, rbar = 0.3, chi2 = 50 * 0.16 / 0.91^2 = 9.66067...
    r1 = np.array([[1.0, 0.5], [0.5, 1.0]])
    r2 = np.array([[1.0, 0.1], [0.1, 1.0]])
    stat, p = jennrich_statistic(r1=r1, n1=100, r2=r2, n2=100)
    np.testing.assert_allclose(stat, 8.0 / 0.91**2, rtol=1e-12)
    np.testing.assert_allclose(p, chi2.sf(8.0 / 0.91**2, 1), rtol=1e-12)
    assert 0.0018 < p < 0.0019


def test_the_null_distribution_has_mean_df_and_chi_square_tails():
    # 400 seeded pairs of independent 4-strategy samples of 120 rows: df = 6, the
    # chi-square's variance 2 df = 12, so the mean's standard error is sqrt(12 / 400)
    # = 0.17; 0.7 is 4 standard errors. At alpha = 0.05 we expect 20 of 400 to fire;
    # the binomial 99.9 % range is about 8..35.
    stats, pvals = [], []
    for seed in range(400):
        x = _series(seed, rows=240)
        s, p = jennrich_statistic(
            r1=np.corrcoef(x[120:].T), n1=120, r2=np.corrcoef(x[:120].T), n2=120
        )
        stats.append(s)
        pvals.append(p)
    assert abs(np.mean(stats) - 6.0) < 0.7
    fired = int((np.array(pvals) < 0.05).sum())
    lo, hi = binom.ppf(0.0005, 400, 0.05), binom.ppf(0.9995, 400, 0.05)
    assert lo <= fired <= hi


def test_a_singular_pooled_matrix_gives_nan_not_a_number():
    x = _series(7, rows=240, k=3)
    x[:, 2] = x[:, 1]  # two copies of one strategy
    check = regime_check(returns=_frame(x), window=120)
    assert np.isnan(check.statistic) and check.shift is False


# the detector


def test_it_fires_on_a_known_break():
    # 120 independent rows then 120 with pairwise correlation 0.6; at the last row the
    # recent window is all factor rows and the reference all independent rows
    check = regime_check(returns=_break(1), window=120, alpha=0.001)
    assert check.shift is True and check.direction == "up"
    assert check.df == 6 and check.strategies == tuple(NAMES)
    assert check.p_value < 1e-10
    assert abs(check.avg_before) < 0.15
    assert 0.45 < check.avg_after < 0.75


def test_it_fires_on_every_seed_of_a_known_break():
    fired = [regime_check(returns=_break(seed), window=120).shift for seed in range(20)]
    assert all(fired)


def test_it_stays_quiet_without_a_break_at_the_stated_alpha():
    # 200 seeded series without a break at alpha = 0.001: 0.2 false alarms expected;
    # P(Binomial(200, 0.001) >= 3) = 0.001, so allow at most 2
    alarms = [regime_check(returns=_quiet(seed), window=120).shift for seed in range(200)]
    assert sum(alarms) <= 2


def test_a_fall_in_correlation_reads_down():
    x = np.vstack([_series(8, factor=True), _series(9)])
    check = regime_check(returns=_frame(x), window=120)
    assert check.shift is True and check.direction == "down"
    assert check.avg_before > 0.45 and abs(check.avg_after) < 0.15


def test_the_history_is_the_test_at_every_row_with_the_stated_windows():
    # window 40, reference 80: at row t the recent rows are t-39..t and the reference
    # rows t-119..t-40; recomputed here with np.corrcoef at two rows
    frame = _break(2)
    check = regime_check(returns=frame, window=40, reference=80)
    hist = check.history
    assert len(hist) == 240 - 40 + 1 and hist.index[0] == frame.index[39]
    assert hist["statistic"].iloc[:80].isna().all()
    assert hist["statistic"].iloc[80:].notna().all()
    x = frame.to_numpy()
    for t in (150, 239):
        r1, r2 = np.corrcoef(x[t - 39 : t + 1].T), np.corrcoef(x[t - 119 : t - 39].T)
        stat, p = jennrich_statistic(r1=r1, n1=40, r2=r2, n2=80)
        row = hist.loc[frame.index[t]]
        np.testing.assert_allclose(row["statistic"], stat, rtol=1e-9)
        np.testing.assert_allclose(row["p_value"], p, rtol=1e-8, atol=1e-300)
        np.testing.assert_allclose(row["avg_before"], _upper_mean(r2), atol=1e-12)
        np.testing.assert_allclose(row["avg_after"], _upper_mean(r1), atol=1e-12)
    np.testing.assert_allclose(hist["statistic"].iloc[-1], check.statistic)
    rolling = rolling_average_correlation(returns=frame, window=40)
    np.testing.assert_allclose(hist["average"], rolling.iloc[39:], atol=1e-12)


def test_a_strategy_flat_in_the_reference_window_is_left_out_of_the_test():
    x = np.vstack([_series(10), _series(11, factor=True)])
    x[:120, 3] = 0.0  # the fourth strategy had not started trading
    check = regime_check(returns=_frame(x), window=120)
    assert check.strategies == tuple(NAMES[:3]) and check.df == 3
    assert check.shift is True
    # it still counts in the recent window's average (all four vary there)
    expected = _upper_mean(np.corrcoef(x[120:].T))
    np.testing.assert_allclose(check.recent_average, expected, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 2}, "at least 3"),
        ({"window": 121}, "too few rows"),
        ({"window": 60, "reference": 200}, "too few rows"),
        ({"window": 5}, "k \\+ 2"),
        ({"alpha": 0.0}, "alpha"),
        ({"threshold": 1.5}, "threshold"),
    ],
)
def test_bad_check_arguments_raise_a_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        regime_check(returns=_break(1), **kwargs)


def test_nan_rows_are_dropped_and_counted():
    frame = _break(1)
    frame.iloc[[3, 200], 1] = np.nan
    check = regime_check(returns=frame, window=110)
    assert check.rows_used == 238 and check.rows_dropped == 2


# threshold, events and the JSON form


def test_the_threshold_flags_a_high_recent_average_and_names_the_top_pair():
    check = regime_check(returns=_break(1), window=120, threshold=0.5)
    x = _break(1).to_numpy()[120:]
    r = np.corrcoef(x.T)
    np.testing.assert_allclose(check.recent_average, _upper_mean(r), atol=1e-12)
    i, j = np.unravel_index(np.argmax(np.triu(r, k=1)), r.shape)
    assert check.max_pair == (NAMES[i], NAMES[j])
    np.testing.assert_allclose(check.max_pair_corr, r[i, j], atol=1e-12)
    assert check.above_threshold is True
    assert regime_check(returns=_break(1), window=120, threshold=0.9).above_threshold is False
    assert regime_check(returns=_break(1), window=120).above_threshold is False


def test_the_messages_say_what_fired_with_the_numbers():
    base = regime_check(returns=_break(1), window=120, threshold=0.5)
    check = dataclasses.replace(
        base,
        avg_before=0.12,
        avg_after=0.61,
        statistic=45.25,
        p_value=1.2e-8,
        recent_average=0.61,
        max_pair=("trend", "carry"),
        max_pair_corr=0.74,
    )
    events = regime_events(check=check)
    assert [e.kind for e in events] == ["shift", "threshold"]
    assert events[0].message == (
        "average correlation rose from 0.12 to 0.61 (Jennrich chi2=45.2, df=6, p=1.2e-08)"
    )
    assert events[1].message == (
        "average correlation 0.61 is above the threshold 0.50 (highest pair trend/carry 0.74)"
    )
    assert events[0].as_of == base.as_of


def test_a_quiet_series_below_threshold_raises_no_event():
    check = regime_check(returns=_quiet(0), window=120, threshold=0.5)
    assert check.shift is False and check.above_threshold is False
    assert regime_events(check=check) == []


def test_to_dict_is_json_with_iso_dates_and_no_nan():
    check = regime_check(returns=_break(1), window=120, threshold=0.5)
    data = json.loads(json.dumps(check.to_dict(), allow_nan=False))
    assert data["as_of"] == _break(1).index[-1].date().isoformat()
    assert data["history"]["dates"][0] == _break(1).index[119].date().isoformat()
    assert len(data["history"]["statistic"]) == 121
    assert data["history"]["statistic"][0] is None
    assert data["history"]["statistic"][-1] == pytest.approx(check.statistic)
    assert [e["kind"] for e in data["events"]] == ["shift", "threshold"]
    assert data["max_pair"] == list(check.max_pair)
