"""Quantsite's backtest of a small benchmark workload equals the plain numpy reference
(``bench.reference``) to 1e-12, relative, on every date: the engine's accounting test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.reference import momentum_targets, simulate, workload_equity
from bench.workload import INITIAL_CAPITAL, TOP_N, Workload, bundled_returns, workload_write
from bench.workload import lookbacks as workload_lookbacks


def test_momentum_targets_pick_the_top_n_trailing_returns_ties_to_the_earlier_column():
    values = np.array([[10.0, 10.0, 10.0], [11.0, 12.0, 12.0], [12.0, 12.0, 15.0]])
    # row 1: returns 0.1, 0.2, 0.2 -> the tie goes to column 1; row 2: 0.2, 0.2, 0.5
    w = momentum_targets(values, lookback=1, top_n=1)
    np.testing.assert_array_equal(w, [[0, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_one_book_holds_its_target_from_the_first_bar_of_the_next_month():
    index = pd.to_datetime(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"])
    closes = pd.DataFrame({"A": [10.0, 10.0, 20.0, 40.0]}, index=index)
    targets = [np.ones((4, 1))]  # decided every close; fills only on 2024-02-01
    # 1,000 in cash until the 1st of February, then 50 units at 20: 2,000 at 40
    np.testing.assert_array_equal(simulate(closes, targets, [1.0], 1000.0), [1000] * 3 + [2000])


@pytest.mark.django_db
def test_quantsite_backtest_equals_the_numpy_reference_to_1e_12(tmp_path):
    from operations.backtest import backtest_run

    # 4 strategies: allocations of 1/4 are exact in Strategy.target_allocation (6 decimals;
    # 1/3 would be stored as 0.333333, so the books would trade 0.999999 of their equity)
    w = Workload(n_bars=300, n_tickers=6, n_strategies=4)
    returns = bundled_returns().iloc[:, :6]  # six distinct tickers
    config_path, data_path, closes = workload_write(w, tmp_path, returns)
    summary = backtest_run(config_path=config_path, data_path=data_path)
    assert summary["trades"] > 100 and len(summary["rebalances"]) == 13
    expected = workload_equity(closes, workload_lookbacks(4), TOP_N, INITIAL_CAPITAL)
    got = np.array(list(summary["portfolio"]["equity"].values()))
    assert len(got) == 300 and got[0] == INITIAL_CAPITAL
    assert expected[-1] != pytest.approx(INITIAL_CAPITAL, rel=1e-3)  # it did trade
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert summary["portfolio"]["final_equity"] == pytest.approx(expected[-1], rel=1e-12)
