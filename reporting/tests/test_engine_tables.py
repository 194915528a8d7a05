"""Export tables from literal rows: fixed columns, Decimals to exact doubles, NULL to NaN."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from reporting.engine import tables

D1, D2, D3 = date(2021, 12, 29), date(2021, 12, 30), date(2021, 12, 31)


def test_the_equity_table_aligns_books_and_benchmark_on_the_portfolio_dates():
    # Book "b" starts on D2 (NaN on D1); the benchmark has no bar on D3 (NaN) and a bar on
    # a date the portfolio never saw (dropped).
    portfolio = [(D1, Decimal("100")), (D2, Decimal("101.5")), (D3, Decimal("99.25"))]
    books = [
        ("a", D1, Decimal("100"), 1.0),
        ("a", D2, Decimal("61.5"), 0.6059113300492611),
        ("b", D2, Decimal("40"), 0.39408866995073893),
        ("a", D3, Decimal("59.25"), 0.596977329974811),
        ("b", D3, Decimal("40"), 0.40302267002518893),
    ]
    bench = [("SP500", D1, Decimal("4778.73")), ("SP500", D2, Decimal("4766.18"))]
    bench.append(("SP500", date(2022, 1, 3), Decimal("4796.56")))
    t = tables.equity_table(portfolio, books, ["a", "b"], bench)
    assert list(t.columns) == [
        "date",
        "portfolio_equity",
        "a_equity",
        "b_equity",
        "a_weight",
        "b_weight",
        "SP500_close",
    ]
    assert list(t["date"]) == [D1, D2, D3]
    assert_array_equal(t["portfolio_equity"], [100.0, 101.5, 99.25])
    assert_array_equal(t["b_equity"], [np.nan, 40.0, 40.0])
    assert t["a_weight"][1] == 0.6059113300492611
    assert_array_equal(t["SP500_close"], [4778.73, 4766.18, np.nan])


def test_an_empty_portfolio_gives_the_columns_and_no_rows():
    t = tables.equity_table([], [], ["a"])
    assert list(t.columns) == ["date", "portfolio_equity", "a_equity", "a_weight"]
    assert len(t) == 0


def test_a_strategy_named_portfolio_is_refused_rather_than_overwriting_the_total():
    with pytest.raises(ValueError, match="portfolio_equity"):
        tables.equity_table([(D1, 1)], [], ["portfolio"])


def test_positions_are_marked_to_the_last_close_with_the_multiplier():
    # long 10 @ 95 closing 100, multiplier 1: value 1,000, P&L (100 - 95) x 10 = 50;
    # short 2 contracts @ 50 closing 45, multiplier 50: value -4,500, P&L (45-50)(-2)50 = 500;
    # no close yet: value and P&L unknown (NaN), not zero.
    rows = [
        ("mom", "AAPL", Decimal("10"), Decimal("95"), D1, Decimal("1"), Decimal("100")),
        ("trend", "ES", Decimal("-2"), Decimal("50"), D2, Decimal("50"), Decimal("45")),
        ("trend", "NEW", Decimal("1"), Decimal("7"), D3, Decimal("1"), None),
    ]
    t = tables.positions_table(rows)
    assert list(t.columns) == list(tables.POSITION_COLUMNS)
    assert_array_equal(t["market_value"], [1000.0, -4500.0, np.nan])
    assert_array_equal(t["unrealized_pnl"], [50.0, 500.0, np.nan])
    assert list(t["entry_date"]) == [D1, D2, D3]


def test_decimals_become_the_nearest_double_not_a_rounded_one():
    price = Decimal("123.4567890123")  # 13 significant digits, as the database holds it
    row = (D1, "mom", "AAPL", "buy", Decimal("0.0000000001"), price, price, 0, 0, "signal", "")
    t = tables.trades_table([row])
    assert t["price"][0] == float(price) == 123.4567890123
    assert t["quantity"][0] == 1e-10
    assert t["price"].dtype == np.float64 and t["date"][0] == D1


def test_risk_metrics_not_computed_stay_empty():
    # the last column is the open-position MAE: NULL on a row written before it existed
    rows = [(D1, 0.95, -0.01, None, None, None, None, None, None, None, None, None)]
    rows.append((D2, 1.0, 0.0, 0.12, 0.02, 0.03, 0.025, 0.035, 1.4, 0.8, 0.5, 0.07))
    t = tables.risk_table(rows)
    assert list(t.columns) == list(tables.RISK_COLUMNS)
    assert math.isnan(t["var_95"][0]) and t["var_95"][1] == 0.02
    assert math.isnan(t["open_mae"][0]) and t["open_mae"][1] == 0.07
    assert t["leverage"][0] == 0.95


def test_violation_timestamps_are_given_in_utc_without_a_zone():
    paris = timezone(timedelta(hours=1))
    opened = datetime(2022, 1, 3, 22, 30, tzinfo=paris)
    row = (D1, "max_dd", "high", "mom", None, -0.2, -0.15, "alert_only", "open", "", None)
    t = tables.violations_table([(*row, opened, None)])
    assert t["opened_at_utc"][0] == datetime(2022, 1, 3, 21, 30)
    assert t["opened_at_utc"][0].tzinfo is None and t["resolved_at_utc"][0] is None
    assert t["ticker"][0] is None and t["value"][0] == -0.2
    assert opened.astimezone(UTC).hour == 21
