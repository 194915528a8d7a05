"""Read-side queries for the update path, pages and the API (HackSoft-style selectors)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from portfolio.models import (
    Instrument,
    Portfolio,
    PriceBar,
)


def price_frame(*, end: date | None = None) -> pd.DataFrame:
    """Stored closes as a wide float frame: DatetimeIndex ascending, one column per ticker
    (benchmarks included), NaN where a ticker has no bar."""
    qs = PriceBar.objects.all()
    if end is not None:
        qs = qs.filter(date__lte=end)
    rows = list(qs.values_list("instrument__ticker", "date", "close").iterator(chunk_size=20000))
    if not rows:
        return pd.DataFrame(dtype=float)
    tickers, dates, closes = zip(*rows, strict=True)
    long = pd.DataFrame(
        {
            "ticker": tickers,
            "date": pd.to_datetime(dates),
            "close": np.asarray(closes, dtype=float),
        }
    )
    wide = long.pivot(index="date", columns="ticker", values="close").sort_index()
    wide.columns.name = None
    return wide


def tradable_tickers() -> list[str]:
    return list(
        Instrument.objects.filter(is_benchmark=False)
        .order_by("ticker")
        .values_list("ticker", flat=True)
    )


def multipliers() -> dict[str, float]:
    return {t: float(m) for t, m in Instrument.objects.values_list("ticker", "multiplier")}


def live_portfolios() -> list[Portfolio]:
    return list(Portfolio.objects.filter(is_backtest=False).order_by("id"))
