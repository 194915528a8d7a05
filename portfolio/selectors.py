"""Read-side queries for the update path, pages and the API (HackSoft-style selectors)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import CharField, FloatField, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from portfolio.models import (
    ConfigChange,
    Instrument,
    Portfolio,
    Position,
    PriceBar,
    RebalanceEvent,
    Strategy,
    StrategySnapshot,
    Trade,
    UpdateRun,
)
from quantsite.rows import rows_read

# Annotation -> StrategySnapshot column of a strategy's latest snapshot (strategy_stats_list).
LATEST_SNAPSHOT_STATS = {
    "as_of": "date",
    "equity": "equity",
    "daily_return": "daily_return",
    "drawdown": "drawdown",
    "weight": "weight",
    "leverage": "leverage",
    "allocation": "allocation",
}


def price_frame(*, end: date | None = None) -> pd.DataFrame:
    """Stored closes up to ``end`` as a wide float frame: DatetimeIndex ascending (every
    date with a bar of any instrument), one column per ticker in ticker order (benchmarks
    included), NaN where a ticker has no bar (``price_frame_benchmarks``)."""
    return price_frame_benchmarks(end=end)[0]


def price_frame_benchmarks(*, end: date | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Every stored close up to ``end``, wide (``price_frame``), and the benchmark tickers
    among its columns (2 queries). The close is cast to a double and the date to ISO text
    in SQL, and the rows read straight from the cursor (``quantsite.rows.rows_read``),
    without a Decimal and a date object per row: 0.3 s instead of 3 s for 174,000 bars, in
    every update. For a close of up to 15 significant digits (every bundled bar) that is
    bit for bit ``float`` of the ORM's Decimal, on both databases; for more digits it is
    the double nearest the decimal written, where Django's SQLite converter would have
    rounded to 15 digits first (``portfolio/tests/test_price_frame.py``)."""
    qs = PriceBar.objects.all()
    if end is not None:
        qs = qs.filter(date__lte=end)
    rows = rows_read(
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
    # columns by comprehension: zip(*rows) of 174,000 rows costs 0.75 s, in the garbage
    # collector its new tuples keep waking
    days, ids, closes = ([r[k] for r in rows] for k in range(3))
    del rows
    ticker_of = {pk: ticker for pk, (ticker, _) in instruments.items()}
    long = pd.DataFrame(
        {
            "ticker": [ticker_of[pk] for pk in ids],
            "date": pd.to_datetime(days, format="%Y-%m-%d"),
            "close": np.asarray(closes, dtype=float),
        }
    )
    # The frame is built by ``pivot`` as it always was, not filled into an array of our
    # own: the values would be the same, but not the memory layout, and a sum across a
    # row (a signal's weights) adds in another order on another layout.
    wide = long.pivot(index="date", columns="ticker", values="close").sort_index()
    wide.columns.name = None
    marked = {ticker for ticker, benchmark in instruments.values() if benchmark}
    return wide, [t for t in wide.columns if t in marked]


def tradable_tickers() -> list[str]:
    return list(
        Instrument.objects.filter(is_benchmark=False)
        .order_by("ticker")
        .values_list("ticker", flat=True)
    )


def multipliers() -> dict[str, float]:
    return {t: float(m) for t, m in Instrument.objects.values_list("ticker", "multiplier")}


def live_portfolio_queryset() -> QuerySet[Portfolio]:
    """Every live (not backtest) portfolio, oldest first (lazy): the update path applies
    each; the dashboard, exports and API show the first (``reporting.selectors``)."""
    return Portfolio.objects.filter(is_backtest=False).order_by("id")


def live_portfolios() -> list[Portfolio]:
    return list(live_portfolio_queryset())


def unit_returns_tail(
    *, portfolio: Portfolio, strategy_ids: list[int], bars: int
) -> tuple[list[date], list[list[float]]]:
    """The last ``bars`` applied bar dates after the funding day (the first snapshot has no
    return), oldest first, and per date the strategies' stored unit returns in the order of
    ``strategy_ids`` (0.0 where a strategy has no row). This is exactly what the engine
    appended to its trailing windows on those bars, so a window rebuilt from it equals the
    one a longer run carried (``StrategySnapshot.unit_return`` is a double, unrounded)."""
    from portfolio.models import PortfolioSnapshot, StrategySnapshot

    if bars <= 0:
        return [], []
    dates = list(
        PortfolioSnapshot.objects.filter(portfolio=portfolio)
        .order_by("-date")
        .values_list("date", flat=True)[: bars + 1]
    )
    if len(dates) <= bars:  # the funding day is among them: it has no return
        dates = dates[:-1]
    dates = dates[:bars][::-1]
    if not dates:
        return [], []
    units = {
        (d, sid): u
        for d, sid, u in StrategySnapshot.objects.filter(
            strategy_id__in=strategy_ids, date__gte=dates[0]
        ).values_list("date", "strategy_id", "unit_return")
    }
    return dates, [[units.get((d, sid), 0.0) for sid in strategy_ids] for d in dates]


def strategy_stats_list() -> QuerySet[Strategy]:
    """Every strategy with its current stats, in display order (lazy: 1 query when read,
    whatever the number of strategies or snapshots). Annotations from the strategy's
    latest StrategySnapshot (``LATEST_SNAPSHOT_STATS``; NULL before its first bar):
    ``as_of`` (its date), ``equity``, ``daily_return`` (simple, vs. the prior bar),
    ``drawdown`` (equity / running peak - 1, <= 0), ``weight`` (equity / portfolio
    equity), ``leverage`` (gross exposure / equity), ``allocation`` (in force at that
    close). The flow-free total return is ``Strategy.nav - 1`` (nav = prod(1 + r) of the
    daily returns since inception), read off the row itself."""
    latest = StrategySnapshot.objects.filter(strategy=OuterRef("pk")).order_by("-date")
    return Strategy.objects.annotate(
        **{
            name: Subquery(latest.values(column)[:1])
            for name, column in LATEST_SNAPSHOT_STATS.items()
        }
    ).order_by("portfolio_id", "position_order", "id")


def trade_list() -> QuerySet[Trade]:
    """Every fill with its strategy and instrument joined, newest first (lazy, 1 query)."""
    return Trade.objects.select_related("strategy", "instrument").order_by("-date", "-id")


def position_list() -> QuerySet[Position]:
    """Every open position (per book) with strategy and instrument joined (lazy, 1 query)."""
    return Position.objects.select_related("strategy", "instrument").order_by("id")


def rebalance_event_list() -> QuerySet[RebalanceEvent]:
    """Every rebalance event, newest first (lazy, 1 query)."""
    return RebalanceEvent.objects.order_by("-date", "-id")


def config_change_list() -> QuerySet[ConfigChange]:
    """The audit trail of configuration changes, newest first (lazy, 1 query)."""
    return ConfigChange.objects.order_by("-at", "-id")


def portfolio_list() -> QuerySet[Portfolio]:
    """Every portfolio, by id (lazy, 1 query)."""
    return Portfolio.objects.order_by("id")


def update_run_list() -> QuerySet[UpdateRun]:
    """Every update run, newest first (lazy, 1 query)."""
    return UpdateRun.objects.order_by("-started_at", "-id")


@dataclass(frozen=True)
class PriceStaleness:
    """``stale``: the provider delivers current bars and the newest stored one is more than
    ``QUANTSITE_STALE_DATA_DAYS`` calendar days old (``days``) on ``today``."""

    stale: bool
    last_date: date | None
    days: int | None


def price_staleness_get(*, today: date | None = None) -> PriceStaleness:
    """No query for the bundled provider (its history ends in 2022 by design); else 1."""
    if settings.QUANTSITE_DATA_PROVIDER == "bundled":
        return PriceStaleness(False, None, None)
    today = today or timezone.localdate()
    last = PriceBar.objects.aggregate(last=Max("date"))["last"]
    if last is None:
        return PriceStaleness(True, None, None)
    days = (today - last).days
    return PriceStaleness(days > settings.QUANTSITE_STALE_DATA_DAYS, last, days)
