"""The update path's close frame (``portfolio.selectors.price_frame``), read with the close
cast to a double in SQL and the rows straight from the cursor, is bit for bit and layout
for layout the frame the ORM's Decimal values give (``float(Decimal)`` per bar, pivoted):
on every bundled bar and on closes of up to 15 significant digits, on SQLite and on
PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from portfolio import selectors
from portfolio.models import Instrument, PriceBar

pytestmark = pytest.mark.django_db


def _through_the_orm(end: date | None = None) -> pd.DataFrame:
    """The reader the update path used before: Decimal per bar, ``float`` of it."""
    qs = PriceBar.objects.all() if end is None else PriceBar.objects.filter(date__lte=end)
    rows = list(qs.values_list("instrument__ticker", "date", "close"))
    tickers, dates, closes = zip(*rows, strict=True)
    long = pd.DataFrame(
        {"ticker": tickers, "date": pd.to_datetime(dates), "close": [float(c) for c in closes]}
    )
    wide = long.pivot(index="date", columns="ticker", values="close").sort_index()
    wide.columns.name = None
    return wide


def _same_bits(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same labels, same values bit for bit, and the same memory layout: a reduction
    across a row (a signal's weights) adds in another order on another layout, so equal
    values alone would still move the stored numbers (seen: 1/16 summed to
    0.06250000000000001 on one layout and 0.0625 on the other)."""
    assert list(a.columns) == list(b.columns)
    assert a.index.equals(b.index) and a.index.name == b.index.name == "date"
    assert a.to_numpy().tobytes() == b.to_numpy().tobytes()
    assert a.to_numpy().flags.c_contiguous == b.to_numpy().flags.c_contiguous
    rows = [f.fillna(0.0).sum(axis=1).to_numpy().tobytes() for f in (a, b)]
    assert rows[0] == rows[1]


def test_every_bundled_close_reads_as_the_double_of_its_decimal():
    frame = selectors.price_frame()
    assert frame.shape[0] > 8000 and frame.shape[1] > 20
    _same_bits(frame, _through_the_orm())
    end = date(2001, 6, 29)
    _same_bits(selectors.price_frame(end=end), _through_the_orm(end))


def _digits_load(closes: list[str]) -> None:
    instrument = Instrument.objects.create(ticker="DIGITS")
    PriceBar.objects.bulk_create(
        PriceBar(instrument=instrument, date=date(2031, 1, 1 + i), close=Decimal(c))
        for i, c in enumerate(closes)
    )


def test_closes_of_up_to_15_significant_digits_read_as_the_orm_reads_them():
    _digits_load(
        ["0.0000000001", "0.1000000001", "1.0000000000", "3.1415926535", "12.3456789012",
         "98765.4321098765", "123456789012345", "0.0001234568"]
    )  # fmt: skip
    _same_bits(selectors.price_frame(), _through_the_orm())


def test_a_close_of_more_digits_reads_as_the_double_nearest_the_decimal_written():
    # SQLite keeps a double; Django's SQLite converter rounds it to 15 significant digits
    # (123456.7890123456 -> 123456.789012346), the cast keeps the stored double, which is
    # the one nearest to what was written. PostgreSQL keeps the decimal, and both readers
    # give its nearest double.
    written = ["123456.7890123456", "99999999999999.9999999999", "1234567.8901234567"]
    _digits_load(written)
    got = selectors.price_frame()["DIGITS"].dropna().tolist()
    assert got == [float(Decimal(c)) for c in written]


def test_the_benchmarks_are_named_and_an_empty_table_reads_empty():
    frame, benchmarks = selectors.price_frame_benchmarks()
    expected = set(Instrument.objects.filter(is_benchmark=True).values_list("ticker", flat=True))
    assert set(benchmarks) == expected & set(frame.columns) and benchmarks
    PriceBar.objects.all().delete()
    empty = selectors.price_frame()
    assert empty.empty and isinstance(empty.index, pd.DatetimeIndex)
