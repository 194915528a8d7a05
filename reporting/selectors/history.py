"""Snapshot histories: the portfolio's and strategies' daily frames (through the ORM and,
at column speed, through the cursor), their return series, and the equity-curve rows
the charts' decimation keeps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db.models import QuerySet

from portfolio.models import Portfolio, PortfolioSnapshot, Strategy, StrategySnapshot
from quantsite.rows import rows_read
from reporting.engine.downsample import decimate
from reporting.selectors.common import _frame

PORTFOLIO_SNAPSHOT_FIELDS = (
    "date",
    "equity",
    "cash",
    "gross_exposure",
    "net_exposure",
    "leverage",
    "daily_return",
    "drawdown",
    "positions_gross",
    "positions_net",
    "volatility",
    "var_95",
    "var_99",
    "cvar_95",
    "cvar_99",
    "open_mae",
)
STRATEGY_SNAPSHOT_FIELDS = (
    "strategy__name",
    "date",
    "equity",
    "daily_return",
    "drawdown",
    "weight",
    "leverage",
    "long_exposure",
    "short_exposure",
    "positions_count",
    "allocation",
    "unrealized_pnl",
    "realized_pnl",
    "max_position_weight",
    "open_mae",
    "flow",
    "status",
)


def portfolio_snapshot_frame(
    *, portfolio: Portfolio, fields: tuple[str, ...] = PORTFOLIO_SNAPSHOT_FIELDS
) -> pd.DataFrame:
    """Every PortfolioSnapshot of ``portfolio`` (1 query): DatetimeIndex, float columns
    ``fields`` after "date" (default ``PORTFOLIO_SNAPSHOT_FIELDS``; NULL risk metrics are
    NaN). ``fields`` must start with "date" and name numeric columns only."""
    rows = list(portfolio.snapshots.order_by("date").values_list(*fields))
    columns = list(fields)
    frame = _frame(rows, columns, floats=tuple(columns[1:]))
    return frame.set_index("date")


def strategy_snapshot_frame(
    *,
    portfolio: Portfolio,
    strategy: Strategy | None = None,
    fields: tuple[str, ...] = STRATEGY_SNAPSHOT_FIELDS,
) -> pd.DataFrame:
    """StrategySnapshot rows, long format (1 query): columns strategy (name), date and the
    rest of ``fields`` (default ``STRATEGY_SNAPSHOT_FIELDS``) as floats, status as text.
    ``fields`` must start with "strategy__name", "date"."""
    qs = StrategySnapshot.objects.filter(strategy__portfolio=portfolio)
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    rows = list(qs.order_by("date", "strategy_id").values_list(*fields))
    columns = ["strategy", *fields[1:]]
    return _frame(rows, columns, floats=tuple(c for c in columns[2:] if c != "status"))


def strategy_wide_frame(snapshots: pd.DataFrame, column: str, names: list[str]) -> pd.DataFrame:
    """One column of ``strategy_snapshot_frame`` as dates x strategies (in ``names``
    order); NaN before a book's first snapshot."""
    if snapshots.empty:
        return pd.DataFrame(columns=names, dtype=float)
    wide = snapshots.pivot(index="date", columns="strategy", values=column)
    wide = wide.reindex(columns=names).sort_index()
    wide.columns.name = None
    return wide.astype(float)


def portfolio_return_series(snapshots: pd.DataFrame) -> pd.Series:
    """The portfolio's daily returns for statistics, from ``portfolio_snapshot_frame``:
    ``daily_return`` of every snapshot but the first, named "Portfolio". The first snapshot
    is the funding day: the update path stores it with daily_return 0.0, but there was no
    equity the day before, so it is not a return. n snapshots give n - 1 returns; the first
    return is the first close after funding. Every page, the static report and the
    notebook read returns through this function (and ``strategy_return_frame``)."""
    return snapshots["daily_return"].iloc[1:].rename("Portfolio")


def strategy_return_frame(snapshots: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Each book's flow-free daily returns for statistics, dates x strategies (``names``
    order), from long StrategySnapshot rows (columns strategy, date, daily_return, as
    ``strategy_snapshot_frame``): every snapshot of a book but its first, which is that
    book's funding day (stored as 0.0, not a return; a book added later is funded on its
    own first date, not the portfolio's). NaN on and before each book's funding day."""
    if snapshots.empty:
        return pd.DataFrame(columns=names, index=pd.DatetimeIndex([]), dtype=float)
    dates = pd.to_datetime(snapshots["date"])
    funded = dates.groupby(snapshots["strategy"]).transform("min")
    later = snapshots.loc[dates > funded].assign(date=dates[dates > funded])
    wide = strategy_wide_frame(later, "daily_return", names)
    wide.index = pd.DatetimeIndex(wide.index)
    return wide


def portfolio_curve_list() -> QuerySet[PortfolioSnapshot]:
    """Portfolio snapshots oldest first: the equity curve rows (lazy, 1 query)."""
    return PortfolioSnapshot.objects.order_by("date", "id")


def strategy_curve_list() -> QuerySet[StrategySnapshot]:
    """Strategy snapshots with their strategy joined, by date then strategy (lazy)."""
    return StrategySnapshot.objects.select_related("strategy").order_by("date", "strategy_id")


def curve_decimated(*, queryset: QuerySet, points: int, by: str | None = None) -> QuerySet:
    """The rows of ``queryset`` that the charts' decimation keeps (1 query, then lazy).

    The equity values are read as a dates x series frame (one series, or one per ``by``
    value, e.g. ``strategy_id``) and passed to ``reporting.engine.downsample.decimate``
    with ``max_points=points``: each bucket's first, last, minimum and maximum survive, so
    the first and last dates and every series' extremes are always kept. The rows on
    the kept dates are returned (all series of a kept date). Raises ValueError when
    ``points`` < 2 + 2 x (number of series)."""
    columns = ["date", "equity"] if by is None else ["date", by, "equity"]
    rows = list(queryset.order_by().values_list(*columns))
    if not rows:
        return queryset
    frame = pd.DataFrame.from_records(rows, columns=columns)
    wide = (
        frame.set_index("date")["equity"]
        if by is None
        else frame.pivot(index="date", columns=by, values="equity")
    ).sort_index()
    series = 1 if by is None else wide.shape[1]
    if points < 2 + 2 * series:
        raise ValueError(f"must be >= {2 + 2 * series} for {series} series (2 + 2 x series)")
    kept = decimate(wide.astype(float), points)
    return queryset.filter(date__in=list(kept.index))


# --- history read without the ORM's per-row conversion (the pages' common read) --------
# ``portfolio_snapshot_frame`` and ``strategy_snapshot_frame`` convert every cell in
# Python (Django's date converters, then ``float`` per value): about 60,000 rows for the
# demo, most of every page's server time. These read the same SELECT through the cursor
# and convert whole columns at once; the frames are equal, value for value and dtype for
# dtype (``reporting/tests/test_history_read.py``).


def _columns_frame(qs: QuerySet, columns: list[str], floats: tuple[str, ...]) -> pd.DataFrame:
    """``qs`` (a ``values_list`` of ``columns``) as a frame, read through the cursor:
    ``floats`` columns float64 (NULL -> NaN), ``date`` as datetime64 (SQLite's ISO text
    and PostgreSQL's dates alike)."""
    frame = pd.DataFrame.from_records(rows_read(qs), columns=columns, coerce_float=False)
    for c in floats:
        frame[c] = np.asarray(frame[c].to_numpy(), dtype=float)
    if "date" in frame.columns:
        frame["date"] = pd.to_datetime(frame["date"])
    return frame


def portfolio_history_frame(*, portfolio: Portfolio) -> pd.DataFrame:
    """``portfolio_snapshot_frame``, read at column speed (1 query)."""
    qs = portfolio.snapshots.order_by("date").values_list(*PORTFOLIO_SNAPSHOT_FIELDS)
    columns = list(PORTFOLIO_SNAPSHOT_FIELDS)
    return _columns_frame(qs, columns, tuple(columns[1:])).set_index("date")


def strategy_history_frame(
    *, portfolio: Portfolio, strategy: Strategy | None = None
) -> pd.DataFrame:
    """``strategy_snapshot_frame``, read at column speed (1 query)."""
    qs = StrategySnapshot.objects.filter(strategy__portfolio=portfolio)
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    qs = qs.order_by("date", "strategy_id").values_list(*STRATEGY_SNAPSHOT_FIELDS)
    columns = ["strategy", *STRATEGY_SNAPSHOT_FIELDS[1:]]
    return _columns_frame(qs, columns, tuple(columns[2:-1]))
