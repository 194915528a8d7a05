"""Round trips from fills (FIFO) on hand-worked fills (no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reporting.engine.trades import round_trips


def _fills(rows):
    return pd.DataFrame(
        rows, columns=["strategy", "ticker", "date", "side", "quantity", "realized_pnl"]
    ).assign(date=lambda f: pd.to_datetime(f["date"]))


def test_a_sell_closes_the_oldest_lots_first_and_holds_for_their_weighted_days():
    fills = _fills(
        [
            ("m", "AAA", "2024-01-01", "buy", 10, 0.0),
            ("m", "AAA", "2024-01-05", "buy", 10, 0.0),
            # closes 10 from Jan 1 (14 days) and 5 from Jan 5 (10 days):
            # hold = (10*14 + 5*10) / 15 = 190 / 15 = 12.667 days
            ("m", "AAA", "2024-01-15", "sell", 15, 30.0),
            # closes the last 5 from Jan 5: 15 days
            ("m", "AAA", "2024-01-20", "sell", 5, -4.0),
        ]
    )
    trips = round_trips(fills)
    np.testing.assert_allclose(trips["hold_days"], [190 / 15, 15.0])
    np.testing.assert_allclose(trips["quantity"], [15, 5])
    np.testing.assert_allclose(trips["realized_pnl"], [30.0, -4.0])
    assert list(trips["exit_date"].dt.day) == [15, 20]
    # entry = exit - round(hold): Jan 15 - 13 days, Jan 20 - 15 days
    assert list(trips["entry_date"].dt.day) == [2, 5]


def test_books_and_tickers_are_independent_and_a_flip_opens_the_rest_short():
    fills = _fills(
        [
            ("m", "AAA", "2024-01-01", "buy", 4, 0.0),
            ("r", "AAA", "2024-01-02", "sell", 2, 0.0),  # another book: opens a short
            ("m", "BBB", "2024-01-02", "buy", 1, 0.0),
            ("m", "AAA", "2024-01-03", "sell", 6, 8.0),  # closes 4 (2 days), short 2
            ("m", "AAA", "2024-01-07", "buy", 2, -1.0),  # covers the short: 4 days
            ("r", "AAA", "2024-01-09", "buy", 2, 3.0),  # covers r's short: 7 days
        ]
    )
    trips = round_trips(fills)
    assert list(trips["strategy"]) == ["m", "m", "r"]
    np.testing.assert_allclose(trips["quantity"], [4, 2, 2])
    np.testing.assert_allclose(trips["hold_days"], [2, 4, 7])


def test_fractional_leftovers_below_the_tolerance_count_as_flat():
    fills = _fills(
        [
            ("m", "AAA", "2024-01-01", "buy", 1 / 3, 0.0),
            ("m", "AAA", "2024-01-02", "buy", 2 / 3, 0.0),
            ("m", "AAA", "2024-01-04", "sell", 1.0 + 1e-12, 1.0),
            ("m", "AAA", "2024-01-05", "buy", 1.0, 0.0),  # a fresh lot, not a cover
        ]
    )
    trips = round_trips(fills)
    assert len(trips) == 1
    # (1/3 * 3 + 2/3 * 2) / 1 = 7/3 days
    assert trips["hold_days"].iat[0] == pytest.approx(7 / 3)


def test_round_trips_refuse_bad_sides_and_quantities():
    with pytest.raises(ValueError, match="side"):
        round_trips(_fills([("m", "A", "2024-01-01", "short", 1, 0.0)]))
    with pytest.raises(ValueError, match="quantity"):
        round_trips(_fills([("m", "A", "2024-01-01", "buy", 0, 0.0)]))
    empty = round_trips(_fills([]))
    assert list(empty.columns)[:2] == ["strategy", "ticker"] and len(empty) == 0


def test_a_same_day_sell_and_buy_close_the_long_and_reopen_it_in_execution_order():
    from risk.engine.metrics import max_adverse_excursion

    fills = _fills(
        [
            ("m", "AAA", "2024-01-01", "buy", 10, 0.0),
            # same date, in execution order: the sell closes the Jan 1 long, the buy
            # opens a new long (a rebalance sells, the signal buys back)
            ("m", "AAA", "2024-01-05", "sell", 10, 150.0),
            ("m", "AAA", "2024-01-05", "buy", 10, 0.0),
            ("m", "AAA", "2024-01-08", "sell", 4, -2.0),
        ]
    )
    trips = round_trips(fills)
    np.testing.assert_allclose(trips["quantity"], [10, 4])
    np.testing.assert_allclose(trips["hold_days"], [4, 3])
    # both trips closed longs: the side is the closed lots', not the date's last fill
    assert list(trips["side"]) == [1, 1]
    # closes 10 -> 25 -> 20 over the first trip: a long's worst close is the entry, so
    # MAE = 0; read as a short (the buy that followed the closing sell) it would be
    # (25 - 10) / 10 = 150 %, impossible for a long-only book.
    closes = pd.Series(
        [10.0, 25.0, 20.0], index=pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-05"])
    )
    first = trips.iloc[0]
    mae = max_adverse_excursion(
        closes,
        entry_date=first["entry_date"],
        exit_date=first["exit_date"],
        side=int(first["side"]),
        entry_price=10.0,
    )
    assert mae == 0.0


def test_a_same_day_buy_then_sell_trims_the_new_long_rather_than_opening_a_short():
    fills = _fills(
        [
            # execution order within the date: the buy opens, then a risk action trims
            # 4; taken in the other order the sell would open a short of 4 that the buy
            # "covers", a short round trip in a long-only book
            ("m", "AAA", "2024-01-05", "buy", 10, 0.0),
            ("m", "AAA", "2024-01-05", "sell", 4, -1.0),
            ("m", "AAA", "2024-01-09", "sell", 6, 3.0),
        ]
    )
    trips = round_trips(fills)
    assert list(trips["side"]) == [1, 1]
    np.testing.assert_allclose(trips["quantity"], [4, 6])
    np.testing.assert_allclose(trips["hold_days"], [0, 4])


def test_a_short_round_trip_has_side_minus_one():
    fills = _fills(
        [
            ("s", "AAA", "2024-01-01", "sell", 3, 0.0),
            ("s", "AAA", "2024-01-04", "buy", 3, -2.0),
        ]
    )
    assert list(round_trips(fills)["side"]) == [-1]


def _priced(rows):
    return pd.DataFrame(
        rows,
        columns=["strategy", "ticker", "date", "side", "quantity", "price", "realized_pnl"],
    ).assign(date=lambda f: pd.to_datetime(f["date"]))


def test_one_sell_of_two_lots_starts_at_the_first_lot_and_costs_their_weighted_price():
    trips = round_trips(
        _priced(
            [
                ("m", "AAA", "2024-01-01", "buy", 10, 100.0, 0.0),
                ("m", "AAA", "2024-01-05", "buy", 30, 110.0, 0.0),
                ("m", "AAA", "2024-01-15", "sell", 40, 120.0, 500.0),
            ]
        )
    )
    # cost basis (10 x 100 + 30 x 110) / 40 = 4300 / 40 = 107.5
    np.testing.assert_allclose(trips["entry_price"], [107.5])
    assert list(trips["first_entry_date"]) == [pd.Timestamp("2024-01-01")]
    # unchanged: hold (10 x 14 + 30 x 10) / 40 = 11 days, entry_date Jan 15 - 11 = Jan 4
    np.testing.assert_allclose(trips["hold_days"], [11.0])
    assert list(trips["entry_date"]) == [pd.Timestamp("2024-01-04")]


def test_a_partly_closed_lot_keeps_its_date_and_price_for_the_next_close():
    trips = round_trips(
        _priced(
            [
                ("m", "AAA", "2024-01-01", "buy", 10, 50.0, 0.0),
                ("m", "AAA", "2024-01-02", "sell", 4, 55.0, 20.0),  # 4 of the Jan 1 lot
                ("m", "AAA", "2024-01-03", "buy", 10, 60.0, 0.0),
                # the 6 left of the Jan 1 lot at 50, then the Jan 3 lot at 60:
                # (6 x 50 + 10 x 60) / 16 = 900 / 16 = 56.25
                ("m", "AAA", "2024-01-10", "sell", 16, 58.0, 12.0),
            ]
        )
    )
    np.testing.assert_allclose(trips["entry_price"], [50.0, 56.25])
    assert list(trips["first_entry_date"].dt.day) == [1, 1]
    np.testing.assert_allclose(trips["quantity"], [4, 16])


def test_a_short_costs_the_weighted_price_it_was_sold_at():
    trips = round_trips(
        _priced(
            [
                ("s", "AAA", "2024-01-01", "sell", 3, 20.0, 0.0),
                ("s", "AAA", "2024-01-02", "sell", 1, 24.0, 0.0),
                ("s", "AAA", "2024-01-04", "buy", 4, 22.0, -4.0),
            ]
        )
    )
    # (3 x 20 + 1 x 24) / 4 = 84 / 4 = 21
    assert list(trips["side"]) == [-1]
    np.testing.assert_allclose(trips["entry_price"], [21.0])
    assert list(trips["first_entry_date"].dt.day) == [1]


def test_a_flip_closes_the_long_at_its_cost_and_opens_the_short_at_the_flip_price():
    trips = round_trips(
        _priced(
            [
                ("m", "AAA", "2024-01-01", "buy", 4, 10.0, 0.0),
                ("m", "AAA", "2024-01-03", "sell", 6, 12.0, 8.0),  # long 4 closed, short 2
                ("m", "AAA", "2024-01-07", "buy", 2, 11.0, 2.0),  # covers the short at 12
            ]
        )
    )
    assert list(trips["side"]) == [1, -1]
    np.testing.assert_allclose(trips["quantity"], [4, 2])
    np.testing.assert_allclose(trips["entry_price"], [10.0, 12.0])
    assert list(trips["first_entry_date"].dt.day) == [1, 3]


def test_without_a_price_column_the_entry_price_is_nan_and_the_dates_are_kept():
    trips = round_trips(
        _fills(
            [
                ("m", "AAA", "2024-01-01", "buy", 1, 0.0),
                ("m", "AAA", "2024-01-03", "buy", 1, 0.0),
                ("m", "AAA", "2024-01-05", "sell", 2, 1.0),
            ]
        )
    )
    assert np.isnan(trips["entry_price"]).all()
    assert list(trips["first_entry_date"].dt.day) == [1]
    assert list(trips["entry_date"].dt.day) == [2]  # exit - round((4 + 2) / 2) = Jan 2
