"""Open-position figures (risk/engine/excursion.py) on a 6-bar literal path, driven through a
real book so the entry price and entry date are the book's own (add, partial close, close,
reopen, a short)."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from numpy.testing import assert_allclose

from portfolio.engine.book import Book, Execution
from risk.engine.excursion import (
    BookFigures,
    CloseHistory,
    OpenPosition,
    book_figures,
    portfolio_open_mae,
    position_adverse_excursion,
)

DAYS = [date(2031, 1, d) for d in (6, 7, 8, 9, 10, 13)]
CLOSES = pd.DataFrame(
    {"X": [100.0, 90.0, 95.0, 80.0, 110.0, 105.0], "Y": [50.0, 55.0, 60.0, 52.0, 45.0, 58.0]},
    index=pd.to_datetime(DAYS),
)
NO_COST = Execution()


def _figures(book: Book, i: int) -> BookFigures:
    marks = CLOSES.iloc[i].to_dict()
    positions = [
        OpenPosition(t, h.quantity, h.avg_price, h.entry_date) for t, h in book.holdings.items()
    ]
    return book_figures(positions, marks, book.equity(marks), {}, CloseHistory(CLOSES), DAYS[i])


def _trade(book: Book, ticker: str, quantity: float, i: int) -> None:
    book.trade(ticker, quantity, CLOSES[ticker].iloc[i], DAYS[i], NO_COST, "test")


def test_max_position_weight_and_open_mae_follow_the_book_through_adds_closes_and_a_reopen():
    book = Book(cash=10_000.0)
    seen = []
    # d1: buy 10 X @ 100 (cash 9000), short 40 Y @ 50 (cash 11000). Equity
    # 11000 + 1000 - 2000 = 10000. Weights X 0.1, Y 0.2. Worst closes = the entry closes.
    _trade(book, "X", 10, 0)
    _trade(book, "Y", -40, 0)
    seen.append(_figures(book, 0))
    # d2: add 10 X @ 90 -> A_X = (1000 + 900) / 20 = 95 (cash 10100). W_X = min(100, 90) =
    # 90, MAE_X = 5/95; Y short, W_Y = max(50, 55) = 55, MAE_Y = 5/50 = 0.1 (the largest).
    # Equity 10100 + 1800 - 2200 = 9700; largest weight Y 2200/9700.
    _trade(book, "X", 10, 1)
    seen.append(_figures(book, 1))
    # d3: buy back 20 Y @ 60 (partial close: A_Y 50, entry d1 kept; cash 8900). W_Y = 60,
    # MAE_Y = 10/50 = 0.2. Equity 8900 + 1900 - 1200 = 9600; largest X 1900/9600.
    _trade(book, "Y", 20, 2)
    seen.append(_figures(book, 2))
    # d4: sell all 20 X @ 80 (cash 10500). Only Y: W_Y = max(50, 55, 60, 52) = 60, 0.2.
    # Equity 10500 - 1040 = 9460; weight 1040/9460.
    _trade(book, "X", -20, 3)
    seen.append(_figures(book, 3))
    # d5: reopen 5 X @ 110 (entry d5: the old entry's 80 no longer counts, W_X = 110, MAE
    # 0), cover the 20 Y @ 45 (cash 10500 - 550 - 900 = 9050). Equity 9600, weight 550/9600.
    _trade(book, "X", 5, 4)
    _trade(book, "Y", 20, 4)
    seen.append(_figures(book, 4))
    # d6: X closes 105: W_X = min(110, 105) = 105, MAE 5/110. Equity 9050 + 525 = 9575.
    seen.append(_figures(book, 5))

    assert_allclose(
        [f.max_position_weight for f in seen],
        [0.2, 2200 / 9700, 1900 / 9600, 1040 / 9460, 550 / 9600, 525 / 9575],
        rtol=1e-15,
    )
    assert_allclose(
        [f.open_mae for f in seen], [0.0, 0.1, 0.2, 0.2, 0.0, 5 / 110], rtol=1e-15, atol=0
    )
    assert [f.worst_ticker for f in seen] == ["X", "Y", "Y", "Y", "X", "X"]


def test_a_flat_book_has_zero_weight_and_zero_mae_at_any_equity():
    for equity in (10_000.0, 0.0, -5.0):
        f = book_figures([], {"X": 100.0}, equity, {}, CloseHistory(CLOSES), DAYS[0])
        assert (f.max_position_weight, f.open_mae, f.worst_ticker) == (0.0, 0.0, None)


def test_the_weight_of_a_book_holding_positions_with_no_positive_equity_is_nan():
    # 10 X @ 100 with cash -2000: equity -1000; the ratio is undefined (stored NULL). The
    # MAE needs no equity: bought at 100, worst close 100 -> 0.
    f = book_figures(
        [OpenPosition("X", 10.0, 100.0, DAYS[0])],
        {"X": 100.0},
        -1000.0,
        {},
        CloseHistory(CLOSES),
        DAYS[0],
    )
    assert math.isnan(f.max_position_weight)
    assert f.open_mae == 0.0


def test_the_weight_counts_the_contract_multiplier():
    # 2 contracts of X at 100 x 50 = 10000 of 40000 equity -> 0.25.
    f = book_figures(
        [OpenPosition("X", 2.0, 100.0, DAYS[0])],
        {"X": 100.0},
        40_000.0,
        {"X": 50.0},
        CloseHistory(CLOSES),
        DAYS[0],
    )
    assert f.max_position_weight == 0.25


def test_a_short_mae_is_measured_against_the_highest_close_and_may_exceed_one():
    # Short Y @ 25 on d1; highest close d1..d3 is 60: (60 - 25) / 25 = 1.4.
    assert position_adverse_excursion(-3.0, 25.0, 60.0) == pytest.approx(1.4, rel=1e-15)
    w = CloseHistory(CLOSES).worst_close("Y", -1, DAYS[0], DAYS[2])
    assert w == 60.0


def test_a_ticker_without_a_bar_on_a_date_keeps_its_worst_close_from_the_bars_it_had():
    # X has no bar on d2: the worst close of a long from d1 to d3 is min(100, 95) = 95.
    closes = CLOSES.copy()
    closes.loc[pd.Timestamp(DAYS[1]), "X"] = float("nan")
    assert CloseHistory(closes).worst_close("X", 1, DAYS[0], DAYS[2]) == 95.0


def test_a_position_whose_entry_has_no_close_in_the_history_is_an_error():
    with pytest.raises(ValueError, match="no close of 'X'"):
        CloseHistory(CLOSES.iloc[3:]).worst_close("X", 1, DAYS[0], DAYS[1])


def test_the_portfolio_mae_is_the_largest_over_every_book_not_netted():
    # Book a: long X, MAE 0.05. Book b: short X, MAE 0.2. Netted they would partly cancel;
    # the portfolio figure is the worst position any book holds: 0.2.
    a = BookFigures(0.3, 0.05, "X")
    b = BookFigures(0.1, 0.2, "X")
    flat = BookFigures(0.0, 0.0, None)
    assert portfolio_open_mae([a, b, flat]) == 0.2
    assert portfolio_open_mae([flat, flat]) == 0.0
    assert portfolio_open_mae([]) == 0.0


def test_a_remembered_look_up_gives_the_bits_of_a_fresh_read_in_any_order():
    # One CloseHistory asked day after day (as the engine does), then backwards and with
    # gaps, against a fresh CloseHistory per question: the same float every time.
    import numpy as np

    rng = np.random.default_rng(3)
    days = pd.bdate_range("2031-01-01", periods=60)
    values = 100 * np.cumprod(1 + rng.normal(0, 0.02, (60, 2)), axis=0)
    values[rng.random((60, 2)) < 0.15] = np.nan
    closes = pd.DataFrame(values, index=days, columns=["X", "Y"])
    remembered = CloseHistory(closes)
    dates = [d.date() for d in days]
    asks = [
        (t, s, dates[e], dates[k])
        for t in "XY"
        for s in (1, -1)
        for e in (0, 7)
        for k in range(e, 60)
    ]
    asks += [(t, s, e, d) for (t, s, e, d) in reversed(asks[::5])]
    for ticker, side, entry, day in asks:
        try:
            fresh = CloseHistory(closes).worst_close(ticker, side, entry, day)
        except ValueError:
            with pytest.raises(ValueError):
                remembered.worst_close(ticker, side, entry, day)
            continue
        got = remembered.worst_close(ticker, side, entry, day)
        span = closes.loc[pd.Timestamp(entry) : pd.Timestamp(day), ticker].dropna()
        assert got == fresh == (span.min() if side > 0 else span.max())
