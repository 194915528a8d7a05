"""Position sizing: vol target, position cap, leverage cap, in that order. Expected numbers
are worked out in the comments."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from portfolio.engine.errors import ConfigError
from portfolio.engine.signals import signal_from_config
from portfolio.engine.sizing import (
    RiskConfig,
    StopLoss,
    risk_config_from_dict,
    size_targets,
    trailing_portfolio_vol,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "sp500_dataset.csv.gz"


def frame(rows: list[list[float]], columns: str = "AB") -> pd.DataFrame:
    index = pd.bdate_range("2024-01-01", periods=len(rows))
    return pd.DataFrame(rows, index=index, columns=list(columns), dtype=float)


# A: 100, 110, 99, 108.9 -> returns +10%, -10%, +10%; B never moves -> returns 0.
# Holding 1/2 A + 1/2 B: portfolio returns .05, -.05, .05 (rows 1..3), mean 1/60;
# deviations 1/30, -2/30, 1/30; sum of squares 6/900; / (3 - 1) -> var 1/300,
# std 0.1/sqrt(3) = 0.057735; annualized sqrt(252) * 0.1/sqrt(3) = 0.1*sqrt(84) = 0.916515.
VOL_CLOSES = frame([[100, 50], [110, 50], [99, 50], [108.9, 50]])
HALF_HALF = frame([[0.5, 0.5]] * 4)
SIGMA = 0.1 * math.sqrt(84)


def test_the_trailing_vol_is_the_annualized_sample_std_of_the_held_portfolio():
    sigma = trailing_portfolio_vol(HALF_HALF.to_numpy(), VOL_CLOSES.to_numpy(), 3)
    # rows 0..2 have fewer than 3 returns behind them
    assert np.isnan(sigma[:3]).all()
    assert_allclose(sigma[3], SIGMA, rtol=1e-12)


def test_the_vol_target_scales_a_row_to_the_target_and_leaves_short_history_unscaled():
    risk = RiskConfig(volatility_target=0.2, vol_lookback=3)
    w = size_targets(HALF_HALF, VOL_CLOSES, risk).to_numpy()
    # scale 0.2 / 0.916515 = 0.218218 -> 0.5 * 0.218218 = 0.109109 = 1/sqrt(84)
    assert_allclose(w[3], [1 / math.sqrt(84)] * 2, rtol=1e-12)
    assert_allclose(w[:3], 0.5)


def test_the_vol_target_can_scale_up_as_well_as_down():
    risk = RiskConfig(volatility_target=2 * SIGMA, vol_lookback=3)
    assert_allclose(size_targets(HALF_HALF, VOL_CLOSES, risk).to_numpy()[3], [1.0, 1.0])


def test_a_riskless_holding_is_left_unscaled_by_the_vol_target():
    closes = frame([[10, 20]] * 5)  # no price moves: sigma = 0
    raw = frame([[0.3, 0.2]] * 4 + [[0, 0]])
    w = size_targets(raw, closes, RiskConfig(volatility_target=0.1, vol_lookback=2))
    assert_allclose(w.to_numpy(), raw.to_numpy())


def test_the_position_cap_clips_each_weight_and_leaves_the_excess_in_cash():
    raw = frame([[0.6, -0.5, 0.1], [0.2, 0.2, 0.2]], "ABC")
    w = size_targets(raw, raw * 0 + 1, RiskConfig(max_position_size=0.3))
    # row 0: 0.6 -> 0.3, -0.5 -> -0.3, 0.1 unchanged (gross 0.7; nothing redistributed)
    assert_allclose(w.to_numpy(), [[0.3, -0.3, 0.1], [0.2, 0.2, 0.2]])


def test_the_leverage_cap_scales_a_row_down_to_exactly_the_limit():
    raw = frame([[0.6, -0.6, 0.3], [0.5, 0.2, -0.1]], "ABC")
    w = size_targets(raw, raw * 0 + 1, RiskConfig(max_leverage=1.0))
    # row 0: gross 1.5 -> x 2/3 = 0.4, -0.4, 0.2; row 1 gross 0.8 is under the cap
    assert_allclose(w.to_numpy(), [[0.4, -0.4, 0.2], [0.5, 0.2, -0.1]])


def test_the_position_cap_applies_before_the_leverage_cap():
    raw = frame([[0.8, 0.4]])
    w = size_targets(raw, raw * 0 + 1, RiskConfig(max_position_size=0.5, max_leverage=0.6))
    # cap: 0.5, 0.4 (gross 0.9) -> x 0.6/0.9: 1/3, 4/15. (Leverage first would give 0.4, 0.2.)
    assert_allclose(w.to_numpy(), [[1 / 3, 4 / 15]])


def test_the_vol_target_applies_before_both_caps():
    risk = RiskConfig(
        volatility_target=2 * SIGMA, vol_lookback=3, max_position_size=0.6, max_leverage=1.0
    )
    w = size_targets(HALF_HALF, VOL_CLOSES, risk).to_numpy()
    # row 3: vol scale x2 -> 1.0, 1.0; cap -> 0.6, 0.6; leverage 1.2 -> 0.5, 0.5.
    # rows 0..2 (unscaled): 0.5, 0.5 pass both caps.
    assert_allclose(w, 0.5)
    # Had the vol target come last, row 3 would be 0.5 * 2 = 1.0 per ticker.


def test_no_rules_leave_the_weights_unchanged():
    assert_array_equal(size_targets(HALF_HALF, VOL_CLOSES, RiskConfig()), HALF_HALF)


def test_sizing_refuses_misaligned_frames():
    with pytest.raises(ValueError, match="same index and columns"):
        size_targets(HALF_HALF, VOL_CLOSES.iloc[1:], RiskConfig())


def test_sizing_row_t_is_blind_to_prices_after_t():
    rng = np.random.default_rng(1)
    closes = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (80, 4)), axis=0)))
    raw = pd.DataFrame(rng.uniform(-0.5, 0.5, (80, 4)))
    risk = RiskConfig(volatility_target=0.15, vol_lookback=10, max_leverage=1.5)
    before = size_targets(raw, closes, risk).to_numpy()
    shocked = closes.copy()
    shocked.iloc[41:] *= 1.7
    after = size_targets(raw, shocked, risk).to_numpy()
    assert_array_equal(after[:41], before[:41])
    assert not np.array_equal(after, before)


# --- configuration -----------------------------------------------------------------------


def test_a_risk_config_is_read_from_its_mapping():
    risk = risk_config_from_dict(
        {"max_position_size": 0.35, "max_leverage": 1, "volatility_target": None}
    )
    assert risk == RiskConfig(max_position_size=0.35, max_leverage=1.0)
    assert risk_config_from_dict(None) == RiskConfig()
    assert risk_config_from_dict({"vol_lookback": 20}).vol_lookback == 20


def test_a_typo_in_the_risk_config_names_the_key_and_lists_the_allowed_ones():
    with pytest.raises(ConfigError) as err:
        risk_config_from_dict({"max_position": 0.3}, where="s.risk_config")
    assert err.value.where == "s.risk_config.max_position"
    assert "max_position_size, max_leverage, volatility_target, vol_lookback" in err.value.rule


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({"max_leverage": -1}, "max_leverage", "positive number"),
        ({"max_position_size": 0}, "max_position_size", "positive number"),
        ({"volatility_target": True}, "volatility_target", "positive number"),
        ({"max_leverage": "1.0"}, "max_leverage", "positive number"),
        ({"vol_lookback": 1}, "vol_lookback", "integer >= 2"),
        ({"vol_lookback": 20.0}, "vol_lookback", "integer >= 2"),
    ],
)
def test_a_bad_risk_value_names_the_field_and_the_rule(data, field, rule):
    with pytest.raises(ConfigError) as err:
        risk_config_from_dict(data)
    assert err.value.where == f"strategy.risk_config.{field}"
    assert rule in str(err.value)


# --- properties and the real prices ------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    raw=arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(1, 5)),
        elements=st.floats(-3, 3, allow_nan=False),
    ),
    cap=st.floats(0.01, 2),
    leverage=st.floats(0.01, 3),
    target=st.none() | st.floats(0.01, 1),
    seed=st.integers(0, 2**16),
)
def test_after_sizing_no_weight_exceeds_the_cap_and_no_row_the_leverage(
    raw, cap, leverage, target, seed
):
    n, k = raw.shape
    rng = np.random.default_rng(seed)
    closes = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.05, (n, k)), axis=0)))
    risk = RiskConfig(
        max_position_size=cap, max_leverage=leverage, volatility_target=target, vol_lookback=2
    )
    w = size_targets(pd.DataFrame(raw), closes, risk).to_numpy()
    assert w.shape == raw.shape and np.isfinite(w).all()
    assert (np.abs(w) <= cap + 1e-12).all()
    assert (np.abs(w).sum(axis=1) <= leverage + 1e-12).all()
    assert (np.sign(w) * np.sign(raw) >= 0).all()  # sizing never flips a side


def test_sizing_the_real_momentum_book_is_fast_and_within_its_limits():
    closes = pd.read_csv(DATA, index_col=0, parse_dates=True)
    raw = signal_from_config("MomentumSignalV2", {"lookback": 120}).targets(closes)
    risk = risk_config_from_dict(
        {"max_position_size": 0.35, "max_leverage": 1.0, "volatility_target": 0.24}
    )
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        w = size_targets(raw, closes, risk)
        times.append(time.perf_counter() - t0)
    assert min(times) < 0.2
    gross = w.abs().sum(axis=1).to_numpy()
    assert (gross <= 1 + 1e-12).all() and (w.abs().to_numpy() <= 0.35).all()
    # a 5-stock book runs hotter than 24% a year, so the target does bind on some rows
    assert (gross[200:] < 0.99).mean() > 0.1


# --- stop-loss configuration --------------------------------------------------------------


def test_a_stop_loss_is_read_from_a_fraction_or_a_mapping():
    assert risk_config_from_dict({"stop_loss": 0.08}).stop_loss == StopLoss(0.08)
    full = {"stop_loss": {"level": 0.1, "trailing": True, "cooloff_bars": 5}}
    assert risk_config_from_dict(full).stop_loss == StopLoss(0.1, True, 5)
    assert risk_config_from_dict({"stop_loss": {"level": 0.1}}).stop_loss == StopLoss(0.1)
    assert risk_config_from_dict({"stop_loss": None}).stop_loss is None
    assert risk_config_from_dict({"max_leverage": 1}).stop_loss is None  # no stop by default


@pytest.mark.parametrize(
    ("value", "where", "rule"),
    [
        (0, "s.risk_config.stop_loss", "must be a fraction in (0, 1), got 0"),
        (1.0, "s.risk_config.stop_loss", "must be a fraction in (0, 1), got 1.0"),
        (True, "s.risk_config.stop_loss", "must be a fraction in (0, 1), got True"),
        ("8%", "s.risk_config.stop_loss", "must be a fraction in (0, 1), got '8%'"),
        ({"level": -0.1}, "s.risk_config.stop_loss.level", "must be a fraction in (0, 1)"),
        ({"trailing": True}, "s.risk_config.stop_loss.level", "is required"),
        ({"level": 0.1, "trail": True}, "s.risk_config.stop_loss.trail", "unknown key"),
        ({"level": 0.1, "trailing": "yes"}, "s.risk_config.stop_loss.trailing", "true or false"),
        ({"level": 0.1, "cooloff_bars": -1}, "s.risk_config.stop_loss.cooloff_bars", ">= 0"),
        ({"level": 0.1, "cooloff_bars": 2.5}, "s.risk_config.stop_loss.cooloff_bars", ">= 0"),
        ({"level": 0.1, "cooloff_bars": True}, "s.risk_config.stop_loss.cooloff_bars", ">= 0"),
    ],
)
def test_a_malformed_stop_loss_is_refused_naming_the_key(value, where, rule):
    with pytest.raises(ConfigError) as err:
        risk_config_from_dict({"stop_loss": value}, where="s.risk_config")
    assert err.value.where == where and rule in err.value.rule
