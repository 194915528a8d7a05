"""The benchmark workload is seeded and a real block bootstrap of whole bundled rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.workload import (
    Workload,
    block_starts_lengths,
    bundled_returns,
    closes_frame,
    config_dict,
    lookbacks,
    workload_write,
)


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    return bundled_returns()


def test_the_same_seed_gives_the_same_frame_and_another_seed_another(returns):
    w = Workload(n_bars=400)
    a, b = closes_frame(w, returns), closes_frame(w, returns)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    other = closes_frame(Workload(n_bars=400, seed=w.seed + 1), returns)
    assert not np.array_equal(a.to_numpy(), other.to_numpy())


def test_block_lengths_are_geometric_with_mean_21():
    _, lengths = block_starts_lengths(np.random.default_rng(0), 500_000, 8_000)
    assert lengths.min() >= 1
    assert abs(lengths[:-1].mean() - 21) < 0.3  # ~23,800 blocks: the mean's s.e. is 0.13


def test_every_row_is_a_whole_bundled_row_on_business_days(returns):
    closes = closes_frame(Workload(n_bars=300), returns)
    assert closes.shape == (300, 20) and list(closes.columns) == list(returns.columns)
    assert (closes.index == pd.bdate_range("2000-01-03", periods=300)).all()
    np.testing.assert_array_equal(closes.iloc[0].to_numpy(), np.full(20, 100.0))
    r = (closes.to_numpy()[1:] / closes.to_numpy()[:-1]) - 1.0
    source = returns.to_numpy()
    for row in r:  # each day's 20 returns are one bundled date's 20 returns
        assert np.isclose(source, row, rtol=1e-9, atol=1e-12).all(axis=1).any()


def test_the_scale_variant_draws_named_columns_with_replacement(returns):
    closes = closes_frame(Workload(n_bars=50, n_tickers=100), returns)
    assert closes.shape == (50, 100) and closes.columns.is_unique
    bases = {c.split(".")[0] for c in closes.columns}
    assert bases <= set(returns.columns) and len(bases) < 100


def test_the_config_has_monthly_top5_momentum_with_costs_off():
    assert lookbacks(10) == [20, 40, 60, 80, 100, 120, 140, 160, 180, 200]
    assert lookbacks(100)[0] == 20 and lookbacks(100)[-1] == 200
    c = config_dict(Workload())
    assert c["portfolio"]["commission_bps"] == c["portfolio"]["slippage_bps"] == 0
    assert sum(s["allocation"] for s in c["strategies"]) == pytest.approx(1.0)
    assert {s["parameters"]["top_n"] for s in c["strategies"]} == {5}
    assert {s["parameters"]["sma_filter"] for s in c["strategies"]} == {None}


def test_the_written_files_round_trip_exactly(tmp_path):
    from portfolio.engine.config_schema import parse_allocation_config

    w = Workload(n_bars=120, n_tickers=6, n_strategies=3)
    config_path, data_path, closes = workload_write(w, tmp_path)
    back = pd.read_csv(data_path, index_col="date", float_precision="round_trip")
    np.testing.assert_array_equal(back.to_numpy(), closes.to_numpy())
    spec = parse_allocation_config(yaml.safe_load(config_path.read_text()), source="t")
    assert [s.signal.params.lookback for s in spec.strategies] == [20, 110, 200]
