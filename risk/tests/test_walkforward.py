"""Strategy variants and walk-forward validation (risk.engine.walkforward). No database."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from bench.reference import momentum_targets, simulate
from portfolio.engine.book import Execution
from portfolio.engine.errors import ConfigError
from risk.engine.walkforward import (
    WALK_FORWARD,
    fold_windows,
    variant_label,
    variant_returns,
    walk_forward,
)

MOMENTUM = "MomentumSignalV2"
# No trend filter, so a lookback-L book starts trading after L + 1 bars (not after 200).
BASE = {"sma_filter": None, "top_n": 2, "frequency": "monthly"}
LOOKBACKS = [{"lookback": 60}, {"lookback": 120}, {"lookback": 200}]
WARMUP = 201  # rows before the longest lookback has a score: every book holds cash there
CAPITAL = 1_000_000.0


def _closes(seed: int = 7, *, rows: int = 750, k: int = 8) -> pd.DataFrame:
    """A seeded geometric random walk: ``rows`` business days x ``k`` tickers."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0003, 0.015, (rows, k))
    index = pd.bdate_range("2020-01-01", periods=rows)
    return pd.DataFrame(
        100.0 * np.exp(np.cumsum(steps, axis=0)),
        index=index,
        columns=[f"T{i}" for i in range(k)],
    )


def _momentum_returns(closes: pd.DataFrame, **kwargs) -> pd.DataFrame:
    return variant_returns(
        closes=closes,
        signal_type=MOMENTUM,
        base_parameters=BASE,
        variants=LOOKBACKS,
        capital=CAPITAL,
        **kwargs,
    )


# --- walk_forward on a hand-made frame -----------------------------------------------------

#            d0    d1    d2    d3    d4    d5    d6    d7    d8    d9   d10   d11
HAND = {
    "A": [0.01, 0.01, 0.01, 0.01, -0.02, -0.02, 0.00, 0.00, 0.01, 0.01, 0.00, 0.00],
    "B": [0.00, 0.00, 0.00, 0.00, 0.02, 0.02, 0.03, 0.03, -0.01, -0.01, 0.00, 0.00],
    "C": [0.02, -0.02, 0.00, 0.00, 0.00, 0.00, 0.01, 0.01, 0.02, 0.02, 0.05, 0.05],
}


def _hand() -> pd.DataFrame:
    return pd.DataFrame(HAND, index=pd.bdate_range("2024-01-01", periods=12))


def test_it_chooses_the_best_in_sample_variant_per_fold_and_stitches_its_oos_returns():
    # in_sample 4, out_of_sample 2, step 2 (default): in-sample rows [0,4) [2,6) [4,8)
    # [6,10), out-of-sample [4,6) [6,8) [8,10) [10,12). Total returns prod(1+r)-1:
    # fold 0, d0-d3: A 1.01^4-1 = 0.04060401, B 0, C 1.02*0.98-1 = -0.0004         -> A
    # fold 1, d2-d5: A 1.01^2*0.98^2-1 = -0.02029596, B 1.02^2-1 = 0.0404, C 0      -> B
    # fold 2, d4-d7: A 0.98^2-1 = -0.0396, B 1.02^2*1.03^2-1 = 0.10376036,
    #                C 1.01^2-1 = 0.0201                                            -> B
    # fold 3, d6-d9: A 0.0201, B 1.03^2*0.99^2-1 = 0.03978809,
    #                C 1.01^2*1.02^2-1 = 0.06131204                                 -> C
    # Stitched OOS: d4,d5 from A (-0.02, -0.02), d6,d7 from B (0.03), d8,d9 from B
    # (-0.01), d10,d11 from C (0.05); its total 0.98^2*1.03^2*0.99^2*1.05^2 - 1.
    result = walk_forward(returns=_hand(), in_sample=4, out_of_sample=2, score="total_return")
    assert [f.chosen for f in result.folds] == ["A", "B", "B", "C"]
    np.testing.assert_allclose(
        [list(f.in_sample_scores.values()) for f in result.folds],
        [
            [0.04060401, 0.0, -0.0004],
            [-0.02029596, 0.0404, 0.0],
            [-0.0396, 0.10376036, 0.0201],
            [0.0201, 0.03978809, 0.06131204],
        ],
        atol=1e-14,
    )
    np.testing.assert_allclose(
        [f.oos_return for f in result.folds],
        [0.98**2 - 1, 1.03**2 - 1, 0.99**2 - 1, 1.05**2 - 1],
        rtol=1e-12,
    )
    assert list(result.oos_returns.index) == list(_hand().index[4:])
    np.testing.assert_allclose(
        result.oos_returns.to_numpy(),
        [-0.02, -0.02, 0.03, 0.03, -0.01, -0.01, 0.05, 0.05],
        rtol=0,
        atol=0,
    )
    assert list(result.oos_chosen) == ["A", "A", "B", "B", "B", "B", "C", "C"]
    stitched = 0.98**2 * 1.03**2 * 0.99**2 * 1.05**2 - 1
    assert result.walk_forward.label == WALK_FORWARD
    assert result.walk_forward.total_return == pytest.approx(stitched, rel=1e-12)
    assert result.walk_forward.times_chosen == 4
    assert [v.times_chosen for v in result.variants] == [1, 2, 1]
    # A over all 12 days: 1.01^6 * 0.98^2 - 1; over the 8 OOS days: 0.98^2 * 1.01^2 - 1.
    assert result.variants[0].total_return == pytest.approx(1.01**6 * 0.98**2 - 1, rel=1e-12)
    assert result.variants[0].oos_total_return == pytest.approx(0.98**2 * 1.01**2 - 1, rel=1e-12)
    # B's OOS scores per fold: 1.02^2-1, 1.03^2-1, 0.99^2-1, 0: mean over the 4 folds.
    b_mean = (1.02**2 + 1.03**2 + 0.99**2 - 3) / 4
    assert result.variants[1].mean_oos_score == pytest.approx(b_mean, rel=1e-12)
    # The chosen variants' OOS scores are the folds' oos_return here: their mean.
    wf_mean = (0.98**2 + 1.03**2 + 0.99**2 + 1.05**2 - 4) / 4
    assert result.walk_forward.mean_oos_score == pytest.approx(wf_mean, rel=1e-12)


def test_fold_dates_are_the_inclusive_window_ends():
    result = walk_forward(returns=_hand(), in_sample=4, out_of_sample=2)
    days = _hand().index.date
    first = result.folds[0]
    assert (first.in_sample_start, first.in_sample_end) == (days[0], days[3])
    assert (first.out_of_sample_start, first.out_of_sample_end) == (days[4], days[5])
    last = result.folds[-1]
    assert (last.in_sample_start, last.out_of_sample_end) == (days[6], days[11])


def test_an_anchored_walk_forward_grows_the_in_sample_window_from_the_first_row():
    # Anchored in-sample rows [0,4) [0,6) [0,8) [0,10). Fold 3 over d0-d9:
    # A 1.01^6*0.98^2-1 = 0.0194847, B 1.02^2*1.03^2*0.99^2-1 = 0.0817955,
    # C 1.02*0.98*1.01^2*1.02^2-1 = 0.0608875 -> B (the rolling window chose C).
    result = walk_forward(
        returns=_hand(), in_sample=4, out_of_sample=2, score="total_return", anchored=True
    )
    assert [f.chosen for f in result.folds] == ["A", "B", "B", "B"]
    assert {f.in_sample_start for f in result.folds} == {date(2024, 1, 1)}
    np.testing.assert_allclose(
        list(result.folds[3].in_sample_scores.values()),
        [
            1.01**6 * 0.98**2 - 1,
            1.02**2 * 1.03**2 * 0.99**2 - 1,
            1.02 * 0.98 * 1.01**2 * 1.02**2 - 1,
        ],
        rtol=1e-12,
    )
    assert result.folds[3].oos_return == 0.0  # B on d10, d11


def test_a_step_longer_than_the_oos_window_leaves_the_dates_between_uncovered():
    # step 3: splits 4, 7, 10 -> OOS rows [4,6) [7,9) [10,12); rows 6 and 9 uncovered.
    result = walk_forward(returns=_hand(), in_sample=4, out_of_sample=2, step=3)
    assert len(result.folds) == 3
    assert list(result.oos_returns.index) == list(_hand().index[[4, 5, 7, 8, 10, 11]])


def test_overlapping_oos_windows_take_the_latest_folds_choice():
    # step 1: fold k has OOS rows [4+k, 6+k); row 5 is in folds 0 and 1, fold 1 wins.
    # Fold 0 (d0-d3) chooses A, fold 1 (d1-d4, total return): A 1.01^3*0.98-1 = 0.0098,
    # B 0.02, C 0.98-1 = -0.02 -> B; so d4 comes from A and d5 from B.
    result = walk_forward(
        returns=_hand(), in_sample=4, out_of_sample=2, step=1, score="total_return"
    )
    assert len(result.folds) == 7  # splits 4..10, each with its 2 OOS rows
    assert [f.chosen for f in result.folds[:2]] == ["A", "B"]
    assert list(result.oos_chosen.iloc[:2]) == ["A", "B"]
    np.testing.assert_allclose(result.oos_returns.iloc[:2], [-0.02, 0.02], atol=0)


def test_an_undefined_sharpe_ranks_last_and_ties_go_to_the_first_variant():
    # Fold 0 (d0-d3), Sharpe: A is constant 0.01 and B constant 0 (no dispersion: NaN),
    # C is 0.02, -0.02, 0, 0 with mean 0: Sharpe 0.0, the only defined one -> C.
    result = walk_forward(returns=_hand(), in_sample=4, out_of_sample=2)
    scores = result.folds[0].in_sample_scores
    assert math.isnan(scores["A"]) and math.isnan(scores["B"]) and scores["C"] == 0.0
    assert result.folds[0].chosen == "C"
    twins = pd.DataFrame({"X": HAND["C"], "Y": HAND["C"]}, index=_hand().index)
    assert {f.chosen for f in walk_forward(returns=twins, in_sample=4, out_of_sample=2).folds} == {
        "X"
    }
    flat = pd.DataFrame({"X": [0.0] * 12, "Y": [0.0] * 12}, index=_hand().index)
    assert walk_forward(returns=flat, in_sample=4, out_of_sample=2).folds[0].chosen == "X"


def test_the_max_drawdown_score_prefers_the_shallowest_drawdown():
    # Fold 0 (d0-d3): A never falls (0), B never falls (0), C falls 2 % on d1 (-0.0004
    # below the start: 1.02*0.98 = 0.9996) -> A, the first of the two zeros.
    result = walk_forward(returns=_hand(), in_sample=4, out_of_sample=2, score="max_drawdown")
    assert result.folds[0].in_sample_scores["C"] == pytest.approx(-0.02, rel=1e-12)
    assert result.folds[0].chosen == "A"


def test_fold_windows_stop_when_the_oos_window_no_longer_fits():
    assert fold_windows(n_rows=11, in_sample=4, out_of_sample=2, step=2, anchored=False) == [
        (0, 4, 6),
        (2, 6, 8),
        (4, 8, 10),
    ]
    assert fold_windows(n_rows=6, in_sample=4, out_of_sample=2, step=5, anchored=True) == [
        (0, 4, 6)
    ]


def test_to_dict_is_json_ready_with_iso_dates_and_nan_as_none():
    payload = walk_forward(returns=_hand(), in_sample=4, out_of_sample=2).to_dict()
    text = json.dumps(payload, allow_nan=False)
    back = json.loads(text)
    assert back["folds"][0]["in_sample_start"] == "2024-01-01"
    assert back["folds"][0]["in_sample_scores"]["A"] is None  # NaN Sharpe
    assert back["oos"]["dates"][0] == "2024-01-05"
    assert back["oos"]["equity"][-1] == pytest.approx(
        float(np.prod(1 + np.array(back["oos"]["returns"]))), rel=1e-12
    )
    assert [v["label"] for v in back["variants"]] == ["A", "B", "C"]
    assert back["walk_forward"]["times_chosen"] == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_sample": 10, "out_of_sample": 3}, "longer than the 12 rows"),
        ({"in_sample": 4, "out_of_sample": 2, "score": "calmar"}, "unknown 'calmar'"),
        ({"in_sample": 1, "out_of_sample": 2}, "in_sample: must be an integer >= 2"),
        ({"in_sample": 4, "out_of_sample": 0}, "out_of_sample: must be an integer >= 1"),
        ({"in_sample": 4, "out_of_sample": 2, "step": 0}, "step: must be an integer >= 1"),
    ],
)
def test_bad_windows_and_scores_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        walk_forward(returns=_hand(), **kwargs)


def test_bad_returns_frames_are_refused():
    frame = _hand()
    with pytest.raises(ValueError, match="at least one variant"):
        walk_forward(returns=frame[[]], in_sample=4, out_of_sample=2)
    with pytest.raises(ValueError, match="duplicate label 'A'"):
        walk_forward(returns=frame[["A", "A"]], in_sample=4, out_of_sample=2)
    holed = frame.copy()
    holed.iloc[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        walk_forward(returns=holed, in_sample=4, out_of_sample=2)
    with pytest.raises(ValueError, match="ascending"):
        walk_forward(returns=frame.iloc[::-1], in_sample=4, out_of_sample=2)


# --- variant_returns through the engine ----------------------------------------------------


def test_one_variant_equals_the_numpy_reference_simulator():
    # bench.reference.simulate is an independent loop of the same daily cycle (costs off,
    # fractional fills, monthly trading on the first bar of a month, targets of close t-1).
    closes = _closes(rows=300)
    returns = variant_returns(
        closes=closes,
        signal_type=MOMENTUM,
        base_parameters=BASE,
        variants=[{"lookback": 60}],
        capital=CAPITAL,
    )
    targets = momentum_targets(closes.to_numpy(), 60, 2)
    equity = simulate(closes, [targets], [1.0], CAPITAL)
    expected = np.r_[0.0, equity[1:] / equity[:-1] - 1.0]
    assert list(returns.columns) == ["lookback=60"]
    assert np.count_nonzero(expected) > 150  # it traded: 61 bars of warm-up, then monthly
    np.testing.assert_allclose(returns["lookback=60"].to_numpy(), expected, rtol=0, atol=1e-12)


def test_each_variant_overrides_the_base_parameters():
    closes = _closes(rows=300)
    side_by_side = variant_returns(
        closes=closes,
        signal_type=MOMENTUM,
        base_parameters=BASE,
        variants=[{"lookback": 60}, {"lookback": 120}],
        capital=CAPITAL,
    )
    alone = variant_returns(
        closes=closes,
        signal_type=MOMENTUM,
        base_parameters={**BASE, "lookback": 120},
        variants=[{}],
        capital=CAPITAL,
    )
    assert list(alone.columns) == ["base"]
    np.testing.assert_array_equal(side_by_side["lookback=120"], alone["base"])
    assert not np.array_equal(side_by_side["lookback=60"], side_by_side["lookback=120"])


def test_costs_and_sizing_rules_reach_the_book():
    closes = _closes(rows=200)
    costless = _momentum_returns(closes)["lookback=60"]
    first_fill = int(np.flatnonzero(costless.to_numpy())[0]) - 1  # bought at its close
    # The first fill buys 2 x 0.5 of the book's equity at the close it is marked at: with
    # no costs that day earns 0; a 10 bp commission costs 10e-4 x gross 1.0 = -0.001.
    assert costless.iloc[first_fill] == 0.0
    costly = _momentum_returns(closes, execution=Execution(commission_bps=10.0))["lookback=60"]
    assert costly.iloc[first_fill] == pytest.approx(-0.001, rel=1e-12)
    # A 0.5 leverage cap holds half of each position, so the next day earns half.
    capped = _momentum_returns(closes, risk_config={"max_leverage": 0.5})["lookback=60"]
    day = first_fill + 1
    assert capped.iloc[day] == pytest.approx(0.5 * costless.iloc[day], rel=1e-9)


def test_variant_returns_refuses_bad_input():
    closes = _closes(rows=50)
    call = {
        "closes": closes,
        "signal_type": MOMENTUM,
        "base_parameters": BASE,
        "capital": CAPITAL,
    }
    with pytest.raises(ValueError, match="at least one variant"):
        variant_returns(**call, variants=[])
    with pytest.raises(ValueError, match="duplicate label 'lookback=60'"):
        variant_returns(**call, variants=[{"lookback": 60}, {"lookback": 60}])
    with pytest.raises(ConfigError, match="variant lookback=0.parameters.lookback"):
        variant_returns(**call, variants=[{"lookback": 0}])
    with pytest.raises(ConfigError, match="did you mean 'lookback'"):
        variant_returns(**call, variants=[{"lookbak": 60}])
    with pytest.raises(ValueError, match="capital"):
        variant_returns(**{**call, "capital": 0.0}, variants=[{}])
    assert variant_label({"lookback": 60, "top_n": 3}) == "lookback=60, top_n=3"


# --- the acceptance test: out-of-sample prices never move an in-sample choice ------------


def _perturbed_after(closes: pd.DataFrame, cut: pd.Timestamp, seed: int) -> pd.DataFrame:
    """``closes`` with every price dated after ``cut`` multiplied by a random factor path
    (a 3 %-a-day log random walk): the earlier prices are left exactly as they were."""
    out = closes.copy()
    later = out.index > cut
    rng = np.random.default_rng(seed)
    path = np.exp(np.cumsum(rng.normal(0.0, 0.03, (int(later.sum()), out.shape[1])), axis=0))
    out.loc[later] = out.loc[later].to_numpy() * path
    return out


@pytest.mark.parametrize(("cut_fold", "seed"), [(0, 1), (0, 2), (3, 3)])
def test_perturbing_out_of_sample_prices_never_changes_an_earlier_in_sample_choice(cut_fold, seed):
    closes = _closes()
    windows = {"in_sample": 126, "out_of_sample": 63}
    base = walk_forward(returns=_momentum_returns(closes).iloc[WARMUP:], **windows)
    cut = pd.Timestamp(base.folds[cut_fold].in_sample_end)
    perturbed_closes = _perturbed_after(closes, cut, seed)
    assert perturbed_closes.loc[:cut].equals(closes.loc[:cut])
    returns = _momentum_returns(perturbed_closes)
    after = walk_forward(returns=returns.iloc[WARMUP:], **windows)

    assert len(after.folds) == len(base.folds) == 6
    # Every return dated at or before the cut is bit for bit the same: the engine itself
    # is causal...
    np.testing.assert_array_equal(
        returns.loc[:cut].to_numpy(), _momentum_returns(closes).loc[:cut].to_numpy()
    )
    # ...and every fold whose in-sample window ends by the cut chose from the same
    # numbers: the same variant, every in-sample score bit for bit.
    unaffected = [f for f in base.folds if pd.Timestamp(f.in_sample_end) <= cut]
    assert len(unaffected) == cut_fold + 1
    for old, new in zip(unaffected, after.folds, strict=False):
        assert new.chosen == old.chosen
        assert new.in_sample_scores == old.in_sample_scores  # exact float equality
    # The perturbation had effect: the cut fold's out-of-sample results moved for every
    # variant, and the later folds' in-sample scores moved too.
    moved = after.folds[cut_fold]
    for label in base.labels:
        assert moved.out_of_sample_scores[label] != base.folds[cut_fold].out_of_sample_scores[label]
    assert moved.oos_return != base.folds[cut_fold].oos_return
    for old, new in zip(base.folds[cut_fold + 1 :], after.folds[cut_fold + 1 :], strict=True):
        assert new.in_sample_scores != old.in_sample_scores
