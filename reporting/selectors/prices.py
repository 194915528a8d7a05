"""Prices and reference data: benchmark closes, instruments, close matrices, the stored
bars' stamp and the whole close history as floats.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import CharField, FloatField
from django.db.models.functions import Cast

from portfolio.models import Instrument, Portfolio, PortfolioSnapshot, PriceBar
from reporting.selectors.common import _raw_rows

BENCHMARK_TICKER = "SP500"


def benchmark_close_series(*, start: date | None = None, end: date | None = None) -> pd.Series:
    """Closes of the benchmark instrument (``is_benchmark`` and ticker SP500; 1 query), on
    a DatetimeIndex; empty when it is not loaded."""
    qs = PriceBar.objects.filter(instrument__ticker=BENCHMARK_TICKER, instrument__is_benchmark=True)
    if start is not None:
        qs = qs.filter(date__gte=start)
    if end is not None:
        qs = qs.filter(date__lte=end)
    return price_series_from(list(qs.order_by("date").values_list("date", "close")))


def benchmark_close_list(*, portfolio: Portfolio) -> list[tuple]:
    """(ticker, date, close) of every benchmark instrument on the dates ``portfolio`` has
    a snapshot for (1 query); close as stored (Decimal)."""
    dates = PortfolioSnapshot.objects.filter(portfolio=portfolio).values("date")
    return list(
        PriceBar.objects.filter(instrument__is_benchmark=True, date__in=dates).values_list(
            "instrument__ticker", "date", "close"
        )
    )


def instrument_frame() -> pd.DataFrame:
    """The tradable instruments (benchmarks left out; 1 query), indexed by ticker, in
    ticker order: columns sector, asset_class, multiplier (float)."""
    rows = list(
        Instrument.objects.filter(is_benchmark=False)
        .order_by("ticker")
        .values_list("ticker", "sector", "asset_class", "multiplier")
    )
    frame = pd.DataFrame(rows, columns=["ticker", "sector", "asset_class", "multiplier"])
    frame["multiplier"] = frame["multiplier"].astype(float)
    return frame.set_index("ticker")


def close_matrix(*, tickers: list[str], end: date | None = None) -> pd.DataFrame:
    """Closes of ``tickers`` up to ``end`` as float64, dates x tickers (1 query), read
    without the ORM's per-value converters (Decimal and date objects for ~170k bars cost
    seconds; the database's own values are parsed in one vectorized pass instead)."""
    qs = PriceBar.objects.filter(instrument__ticker__in=tickers)
    if end is not None:
        qs = qs.filter(date__lte=end)
    rows = _raw_rows(qs.values_list("date", "instrument__ticker", "close"))
    if not rows:
        return pd.DataFrame(index=pd.DatetimeIndex([]), columns=tickers, dtype=float)
    frame = pd.DataFrame(rows, columns=["date", "ticker", "close"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["close"] = frame["close"].astype(float)
    wide = frame.pivot(index="date", columns="ticker", values="close").sort_index()
    wide.columns.name = None
    return wide.reindex(columns=tickers)


def price_series_from(rows: list[tuple]) -> pd.Series:
    if not rows:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([]))
    dates, closes = zip(*rows, strict=True)
    return pd.Series(np.asarray(closes, dtype=float), index=pd.to_datetime(list(dates)))


# --- strategy page reads (issue 14) ---


def reference_stamp_get() -> tuple:
    """What every page reads besides the portfolio's own rows, as a stamp (2 queries): the
    stored bars' ``price_bar_stamp`` (a history loaded or a bar added without a commit of
    the update path) and every instrument's row (a sector or multiplier edited in the
    admin)."""
    instruments = tuple(
        Instrument.objects.order_by("id").values_list(
            "id", "ticker", "sector", "asset_class", "multiplier", "is_benchmark"
        )
    )
    return (price_bar_stamp(), instruments)


def price_bar_stamp(*, end: date | None = None) -> tuple[int, int]:
    """(number of bars, highest bar id) up to ``end`` (1 query): changes whenever a bar
    up to ``end`` is added or deleted, so a frame read from them can be cached on it.

    Every page request reads it (``reference_stamp_get``), so it is written as two
    scalar subqueries in one statement: ``COUNT(*)`` alone lets SQLite count the rows of
    its smallest index (0.7 ms for the demo's 169,000 bars) where ``COUNT(id)`` next to
    ``MAX(id)`` in one aggregate walks every row (17 ms); the figures are the same."""
    quote, meta = connection.ops.quote_name, PriceBar._meta
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    where, params = "", []
    if end is not None:
        where, params = f" WHERE {quote(meta.get_field('date').column)} <= %s", [end, end]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {table}{where}), (SELECT MAX({pk}) FROM {table}{where})",
            params,
        )
        n, last = cursor.fetchone()
    return int(n), int(last or 0)


def price_close_float_frame(*, end: date | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Every stored close up to ``end``, wide: the update path's close frame
    (``portfolio.selectors.price_frame``: every date with a bar of any instrument,
    ascending, one column per ticker in ticker order, NaN where no bar), and the benchmark
    tickers among its columns (2 queries). The close is cast to a double and the date to
    ISO text in SQL: the Decimal column holds at most 15 significant digits, so the cast
    is exactly ``float(Decimal)``, without a Decimal and a date object per row."""
    qs = PriceBar.objects.all()
    if end is not None:
        qs = qs.filter(date__lte=end)
    rows = _raw_rows(
        qs.order_by()
        .annotate(day=Cast("date", CharField()), close_float=Cast("close", FloatField()))
        .values_list("day", "instrument_id", "close_float")
    )
    instruments = {
        pk: (ticker, benchmark)
        for pk, ticker, benchmark in Instrument.objects.values_list("id", "ticker", "is_benchmark")
    }
    if not rows:
        return pd.DataFrame(index=pd.DatetimeIndex([]), dtype=float), []
    days, ids, closes = zip(*rows, strict=True)
    del rows
    codes, uniques = pd.factorize(np.asarray(days, dtype=object))
    order = np.argsort(uniques)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    ids = np.asarray(ids, dtype=np.int64)
    column_ids = sorted(np.unique(ids).tolist(), key=lambda pk: instruments[pk][0])
    column_of = np.full(int(ids.max()) + 1, -1)
    column_of[column_ids] = np.arange(len(column_ids))
    values = np.full((len(uniques), len(column_ids)), np.nan)
    values[position[codes], column_of[ids]] = np.asarray(closes, dtype=float)
    index = pd.DatetimeIndex(pd.to_datetime(uniques[order], format="%Y-%m-%d"))
    columns = [instruments[pk][0] for pk in column_ids]
    benchmarks = [instruments[pk][0] for pk in column_ids if instruments[pk][1]]
    return pd.DataFrame(values, index=index, columns=columns), benchmarks
