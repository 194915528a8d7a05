"""Per-position stop-losses (engine): the stop fills at the close that breaches it and not
before, once; the cool-off blocks re-entry for exactly N bars; shorts mirror longs;
trailing stops follow the best close since entry and only ratchet in the position's
favour; an add re-averages the entry a fixed stop measures from, a partial reduce does
not. Each path runs through the daily cycle (``apply_dates``) with the stop step as the
risk hook, one strategy ``A`` holding one ticker ``X``, no costs, equity 1000. Levels of
0.25 keep every stop price exact in binary (``ref * 0.75``, ``ref * 1.25``)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from portfolio.engine.book import Book, Execution
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.engine.cycle import PortfolioState, StrategyState, apply_dates
from portfolio.engine.errors import ConfigError
from portfolio.engine.sizing import StopLoss
from portfolio.engine.state import DayContext
from risk.engine.manager import RiskState, risk_step
from risk.engine.stops import (
    StopBook,
    StopTrack,
    stop_book_dump,
    stop_book_load,
    stop_price,
    stops_step,
)

D0 = date(2024, 3, 1)


def _run(closes: list[float], weights: list[float], stop: StopLoss, band: float = 0.0):
    """Bar 0 funds the book; the targets decided at bar i fill at the close of bar i+1."""
    index = pd.date_range(D0, periods=len(closes), freq="D")
    prices = pd.DataFrame({"X": closes}, index=index, dtype=float)
    targets = pd.DataFrame({"X": weights}, index=index, dtype=float)
    ex = Execution(trade_band=band)
    state = PortfolioState(1000.0, 1.0, [StrategyState("A", 1.0, True, "daily", ex, Book())])
    book, events, blocked = StopBook(), [], []

    def hook(state, ctx):
        events.extend(stops_step(state, ctx, book, {"A": stop}))
        blocked.append(sorted(state.strategies[0].reentry_blocked))

    results = apply_dates(state, prices, {"A": targets}, list(index.date), risk_hook=hook)
    fills = [(i, f.quantity, f.price, f.reason) for i, r in enumerate(results) for _, f in r.fills]
    return fills, events, state, blocked


def _bar(i: int) -> date:
    return (pd.Timestamp(D0) + pd.Timedelta(days=i)).date()


def test_a_long_stops_at_the_close_that_touches_the_level_and_not_the_bar_before():
    # Bar 1 buys 10 at 100 (weight 1 of 1000): average entry 100, stop 100 * 0.75 = 75.
    # Bar 3 closes at 75.01, just above: nothing; bar 4 closes at 75: sell 10 at 75.
    fills, events, state, _ = _run([100, 100, 90, 75.01, 75, 70], [1.0] * 6, StopLoss(0.25))
    assert fills[0] == (1, 10.0, 100.0, "signal")
    assert fills[1] == (4, -10.0, 75.0, "risk_action")
    assert [(e.kind, e.day, e.close, e.stop) for e in events[:1]] == [
        ("opened", _bar(4), 75.0, 75.0)
    ]
    assert "stop 75" in events[0].message and "average entry 100" in events[0].message
    # no cool-off: the stop resolves at once and bar 5 buys again toward the weight of 1
    assert events[1].kind == "resolved" and events[1].day == _bar(4)
    assert fills[2] == (5, pytest.approx(750 / 70), 70.0, "signal")
    assert state.strategies[0].book.cash == pytest.approx(0.0)


def test_the_cooloff_blocks_re_entry_for_exactly_n_bars_and_the_next_bar_re_enters():
    # Stop at bar 4 (close 75, cash 750), cool-off 2: the signal's fills at bars 5 and 6
    # are blocked; the cool-off resolves at the close of bar 6; bar 7 buys 750 / 80.
    closes = [100, 100, 90, 75.01, 75, 76, 78, 80, 81]
    fills, events, _, blocked = _run(closes, [1.0] * 9, StopLoss(0.25, cooloff_bars=2))
    assert [f[0] for f in fills] == [1, 4, 7]
    assert fills[2] == (7, pytest.approx(750 / 80), 80.0, "signal")
    assert [(e.kind, e.day) for e in events] == [("opened", _bar(4)), ("resolved", _bar(6))]
    # blocked as seen after each bar's stop step (bars 0..8)
    assert blocked == [[], [], [], [], ["X"], ["X"], [], [], []]


def test_a_short_mirrors_a_long_stopping_at_the_close_that_touches_125_percent_of_entry():
    # Bar 1 sells 10 at 100; the weights decided at bar i-1 are -10 p_i / (2000 - 10 p_i),
    # which keep the short at 10 units at the close of bar i (equity 2000 - 10 p_i; at
    # bar 1 the 1000 in cash). Stop
    # 100 * 1.25 = 125: bar 3 at 124.99 nothing, bar 4 at 125 buys the 10 back.
    closes = [100, 100, 110, 124.99, 125, 130]
    weights = [-10 * p / (2000 - 10 * p) for p in closes[1:]] + [0.0]
    fills, events, _, _ = _run(closes, weights, StopLoss(0.25, cooloff_bars=5))
    assert fills == [(1, -10.0, 100.0, "signal"), (4, 10.0, 125.0, "risk_action")]
    assert [(e.kind, e.close, e.stop) for e in events] == [("opened", 125.0, 125.0)]
    assert "closed short 10 X" in events[0].message and "above average entry" in events[0].message


def test_a_trailing_long_stop_follows_the_highest_close_and_never_moves_down():
    # Closes since entry 100, 120, 160: best 160, stop 120. Bar 4 at 130 does not lower the
    # best (a stop from 130 would be 97.5), bar 5 at 120.01 holds, bar 6 at 120 sells. A
    # fixed stop from the average entry 100 would still be at 75.
    closes = [100, 100, 120, 160, 130, 120.01, 120, 119]
    stop = StopLoss(0.25, trailing=True, cooloff_bars=3)
    fills, events, _, _ = _run(closes, [1.0] * 8, stop)
    assert fills == [(1, 10.0, 100.0, "signal"), (6, -10.0, 120.0, "risk_action")]
    assert events[0].stop == 120.0 and "best close since entry 160" in events[0].message


def test_a_trailing_short_stop_follows_the_lowest_close():
    # Short 10 at 100; closes 80, 60: best 60, stop 60 * 1.25 = 75. Bar 4 at 70 and bar 5
    # at 74.99 hold; bar 6 at 75 buys the 10 back.
    closes = [100, 100, 80, 60, 70, 74.99, 75]
    stop = StopLoss(0.25, trailing=True, cooloff_bars=1)
    fills, events, _, _ = _run(closes, [-1.0] * 7, stop, band=0.9)
    assert fills == [(1, -10.0, 100.0, "signal"), (6, 10.0, 75.0, "risk_action")]
    assert events[0].stop == 75.0


def test_an_add_re_averages_the_entry_the_stop_measures_from():
    # Bar 1 buys 5 at 100 (weight 0.5); bar 2 (weight 1, equity 500 + 5 * 80 = 900) buys
    # 6.25 at 80: average (500 + 500) / 11.25 = 88.89, stop 66.67 (not 75). Bar 3 at 70 is
    # below 75 but above 66.67: held; bar 4 at 66 sells the 11.25.
    closes = [100, 100, 80, 70, 66, 60]
    fills, events, _, _ = _run(closes, [0.5] + [1.0] * 5, StopLoss(0.25, cooloff_bars=9))
    assert fills[:2] == [(1, 5.0, 100.0, "signal"), (2, 6.25, 80.0, "signal")]
    assert fills[2] == (4, -11.25, 66.0, "risk_action")
    assert events[0].stop == pytest.approx(1000 / 11.25 * 0.75)


def test_a_partial_reduce_keeps_the_average_entry_and_its_stop():
    # Bar 1 buys 10 at 100; bar 2 (weight 0.5 of 900) sells 5 at 90: the average entry
    # stays 100 and the stop 75 (the band 0.1 keeps the 5 units after that). Bar 3 at
    # 75.5 holds, bar 4 at 75 sells the 5.
    closes = [100, 100, 90, 75.5, 75, 74]
    fills, _, state, _ = _run(closes, [1.0] + [0.5] * 5, StopLoss(0.25, cooloff_bars=9), 0.1)
    assert fills == [
        (1, 10.0, 100.0, "signal"),
        (2, -5.0, 90.0, "signal"),
        (4, -5.0, 75.0, "risk_action"),
    ]
    assert state.strategies[0].book.holdings == {}


def test_a_book_without_a_stop_is_never_stopped():
    fills, events, _, _ = _run([100, 100, 50, 10], [1.0] * 4, None)
    assert [f[3] for f in fills] == ["signal"] and events == []


def test_stop_prices_of_a_long_and_a_short():
    assert stop_price(StopLoss(0.25), 1.0, 100.0, 160.0) == 75.0
    assert stop_price(StopLoss(0.25), -1.0, 100.0, 60.0) == 125.0
    assert stop_price(StopLoss(0.25, trailing=True), 1.0, 100.0, 160.0) == 120.0
    assert stop_price(StopLoss(0.25, trailing=True), -1.0, 100.0, 60.0) == 75.0


def test_the_stop_book_round_trips_through_json_exactly():
    book = StopBook(
        tracks={("b", "Y"): StopTrack(-1.0, D0, 0.1 + 0.2), ("a", "X"): StopTrack(1.0, D0, 1 / 3)},
        cooloffs={("b", "X"): 2, ("a", "Y"): 1},
    )
    raw = json.loads(json.dumps(stop_book_dump(book)))
    assert stop_book_load(raw) == book
    assert [row[:2] for row in raw["tracks"]] == [["a", "X"], ["b", "Y"]]  # sorted keys
    assert stop_book_load(None) == StopBook() and not StopBook()


def _demo_yaml() -> dict:
    path = Path(__file__).resolve().parents[2] / "config" / "strategy_allocation.yaml"
    return yaml.safe_load(path.read_text())


def test_the_shipped_yaml_configures_no_stop():
    spec = parse_allocation_config(_demo_yaml(), source="strategy_allocation.yaml")
    assert [s.risk.stop_loss for s in spec.strategies] == [None] * 5


def test_a_malformed_stop_in_the_yaml_is_refused_naming_the_file_and_key():
    data = _demo_yaml()
    data["strategies"][1]["risk_config"]["stop_loss"] = {"level": 0.08, "cooloff_bars": -2}
    with pytest.raises(ConfigError) as err:
        parse_allocation_config(data, source="strategy_allocation.yaml")
    where = "strategy_allocation.yaml: strategies[1].risk_config.stop_loss.cooloff_bars"
    assert err.value.where == where and "integer >= 0, got -2" in err.value.rule
    data["strategies"][1]["risk_config"]["stop_loss"] = {"level": 0.08, "trailing": True}
    spec = parse_allocation_config(data, source="strategy_allocation.yaml")
    assert spec.strategies[1].risk.stop_loss == StopLoss(0.08, trailing=True)
    assert spec.strategies[1].risk_config["stop_loss"] == {"level": 0.08, "trailing": True}


def test_a_recovery_step_does_not_re_enter_a_ticker_cooling_off():
    # A (all cash, 1000) steps back to full size toward its targets X 0.5, Y 0.5 while X
    # cools off after a stop: it buys 500 / 50 = 10 Y and no X.
    a = StrategyState("A", 1.0, True, "daily", Execution(), Book(1000.0), pending={})
    a.pending, a.reentry_blocked = {"X": 0.5, "Y": 0.5}, {"X"}
    state = PortfolioState(1000.0, 1.0, [a])
    ctx = DayContext(D0, {"X": 100.0, "Y": 50.0}, {"X": 100.0, "Y": 50.0}, {"A": 0.0})
    risk_step(state, ctx, RiskState(strategy_ramps={"A": [1.0]}), [], {}, np.zeros((0, 1)))
    assert [(f.ticker, f.quantity, f.reason) for _, f in ctx.fills] == [("Y", 10.0, "risk_action")]
