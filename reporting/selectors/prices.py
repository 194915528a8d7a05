"""Prices and reference data: benchmark closes, instruments, close matrices and the stored
bars' stamp (the whole close history as floats is ``portfolio.selectors``'s
``price_frame_benchmarks``, the update path's reader).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from django.db import connection

from portfolio.models import Instrument, Portfolio, PortfolioSnapshot, PriceBar
from quantsite.rows import rows_read

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
    rows = rows_read(qs.values_list("date", "instrument__ticker", "close"))
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
