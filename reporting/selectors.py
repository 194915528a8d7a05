"""Read-side queries for the dashboard pages (HackSoft-style selectors: keyword-only, typed,
``<entity>_<verb>``).

Each selector is a fixed number of queries whatever the portfolio's size: histories are
read with one ``values_list`` into pandas (Decimal money becomes float64 here, at the
boundary), lists are sliced in SQL. Dates in frames are a ``DatetimeIndex`` or datetime64
column.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
from django.db import connections
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    FloatField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Cast, Coalesce

from portfolio import selectors as portfolio_selectors
from portfolio.models import (
    ConfigChange,
    Instrument,
    PendingOrder,
    Portfolio,
    PortfolioSnapshot,
    Position,
    PriceBar,
    RebalanceEvent,
    RebalanceRequest,
    StateVersion,
    Strategy,
    StrategySnapshot,
    Trade,
    UpdateRun,
)
from reporting.engine.downsample import decimate
from risk import selectors as risk_selectors
from risk.models import AlertChannel, RiskLimit, Violation

BENCHMARK_TICKER = "SP500"

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
TRADE_FIELDS = (
    "id",
    "strategy__name",
    "instrument__ticker",
    "date",
    "side",
    "quantity",
    "price",
    "value",
    "cost",
    "realized_pnl",
    "reason",
)
BRIEF_TRADE_FIELDS = (
    "strategy__name",
    "instrument__ticker",
    "date",
    "side",
    "quantity",
    "realized_pnl",
)


def _frame(rows: list[tuple], columns: list[str], floats: tuple[str, ...] = ()) -> pd.DataFrame:
    """A frame from values_list rows; ``floats`` columns as float64 (Decimal, None -> NaN)."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for c in floats:
        frame[c] = np.asarray([np.nan if v is None else float(v) for v in frame[c]], dtype=float)
    if "date" in frame.columns:
        frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _live_portfolios() -> QuerySet[Portfolio]:
    """The live-portfolio rule, written once: the live portfolio is the first of
    ``portfolio.selectors.live_portfolio_queryset`` (the first non-backtest portfolio
    created). Pages, exports, the API and the commands all default to it through
    ``portfolio_live_get``, ``portfolio_get`` or ``live_portfolio_id_subquery``."""
    return portfolio_selectors.live_portfolio_queryset()


def portfolio_live_get() -> Portfolio | None:
    """The live (not backtest) portfolio the dashboard shows (``_live_portfolios``)."""
    return _live_portfolios().select_related("state_version").first()


def portfolio_get(*, pk: int | None = None, name: str | None = None) -> Portfolio | None:
    """A portfolio by id, else by name, else (neither given) the live one (1 query).
    None when there is no such portfolio: unlike ``portfolio_shown_get``, an unknown id
    or name never falls back to the live portfolio."""
    if pk is not None:
        return Portfolio.objects.filter(pk=pk).select_related("state_version").first()
    if name is not None:
        return Portfolio.objects.filter(name=name).select_related("state_version").first()
    return portfolio_live_get()


def portfolio_shown_get(*, pk: int | None) -> Portfolio | None:
    """The portfolio the dashboard shows: the one with id ``pk`` (a live or a backtest
    portfolio) when it exists, else the live one (1 query)."""
    chosen = portfolio_get(pk=pk) if pk is not None else None
    return chosen if chosen is not None else portfolio_live_get()


def portfolio_choices() -> list[dict]:
    """Every portfolio the dashboard can show, the live ones first (by id), then the
    backtests by name: ``{"id", "name", "is_backtest"}`` (1 query)."""
    rows = Portfolio.objects.order_by("is_backtest", "id").values("id", "name", "is_backtest")
    live = [r for r in rows if not r["is_backtest"]]
    return live + sorted((r for r in rows if r["is_backtest"]), key=lambda r: r["name"])


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


def strategy_list(*, portfolio: Portfolio) -> list[Strategy]:
    """The portfolio's strategies in display order (1 query)."""
    return list(portfolio.strategies.order_by("position_order", "name"))


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


def position_frame(
    *, portfolio: Portfolio, as_of: date | None, strategy: Strategy | None = None
) -> pd.DataFrame:
    """Open positions (1 query) with each instrument's last close on or before ``as_of``:
    columns strategy, ticker, sector, quantity, avg_entry_price, entry_date, multiplier,
    close, asset_class, value (= quantity x close x multiplier, signed), unrealized_pnl
    (= quantity x (close - avg entry) x multiplier)."""
    last_close = PriceBar.objects.filter(instrument=OuterRef("instrument"))
    if as_of is not None:
        last_close = last_close.filter(date__lte=as_of)
    qs = Position.objects.filter(strategy__portfolio=portfolio)
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    rows = list(
        qs.annotate(close=Subquery(last_close.order_by("-date").values("close")[:1]))
        .order_by("strategy__position_order", "strategy_id", "instrument__ticker")
        .values_list(
            "strategy__name",
            "instrument__ticker",
            "instrument__sector",
            "quantity",
            "avg_entry_price",
            "entry_date",
            "instrument__multiplier",
            "close",
            "instrument__asset_class",
        )
    )
    columns = [
        "strategy",
        "ticker",
        "sector",
        "quantity",
        "avg_entry_price",
        "entry_date",
        "multiplier",
        "close",
        "asset_class",
    ]
    frame = _frame(rows, columns, floats=("quantity", "avg_entry_price", "multiplier", "close"))
    frame["entry_date"] = pd.to_datetime(frame["entry_date"])
    frame["value"] = frame["quantity"] * frame["close"] * frame["multiplier"]
    frame["unrealized_pnl"] = (
        frame["quantity"] * (frame["close"] - frame["avg_entry_price"]) * frame["multiplier"]
    )
    return frame


def _trade_query(
    portfolio: Portfolio, strategy: Strategy | None, brief: bool, detail: bool
) -> tuple[QuerySet[Trade], list[str], list[str]]:
    """The fills of ``trade_frame`` in execution order, the values_list fields, and the
    frame's column names (one definition for the whole read and the paged one)."""
    qs = Trade.objects.filter(strategy__portfolio=portfolio)
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    fields = [f for f in TRADE_FIELDS if not brief or f in BRIEF_TRADE_FIELDS]
    fields += ["detail"] if detail else []
    columns = [
        {"strategy__name": "strategy", "instrument__ticker": "ticker"}.get(f, f) for f in fields
    ]
    return qs.order_by("date", "id"), fields, columns


_TRADE_FLOATS = ("quantity", "price", "value", "cost", "realized_pnl")


def trade_frame(
    *,
    portfolio: Portfolio,
    strategy: Strategy | None = None,
    brief: bool = False,
    detail: bool = False,
) -> pd.DataFrame:
    """Every fill (1 query), in execution order: columns id, strategy, ticker, date, side,
    quantity, price, value, cost, realized_pnl (floats), reason, and with ``detail`` the
    fill's detail text (the exports). ``brief`` reads only strategy, ticker, date, side,
    quantity and realized_pnl (what round trips need: on 90k fills, every Decimal column
    read costs a noticeable fraction of a second)."""
    qs, fields, columns = _trade_query(portfolio, strategy, brief, detail)
    rows = list(qs.values_list(*fields).iterator(chunk_size=20000))
    return _frame(rows, columns, floats=tuple(c for c in _TRADE_FLOATS if c in columns))


def trade_frame_pages(
    *,
    portfolio: Portfolio,
    strategy: Strategy | None = None,
    detail: bool = False,
    rows: int = 5000,
) -> Iterator[pd.DataFrame]:
    """``trade_frame`` (not ``brief``) in pages of at most ``rows`` fills, in the same
    order and with the same columns: memory bounded by a page, whatever the number of
    fills. One query a page, keyset on (date, id): no cursor stays open between pages (a
    slow download holds no read on the database), and a page costs the same wherever it
    starts. Fills written while the pages are read are included when they come after the
    page last read (an update's new bars), not otherwise. At least one frame (empty when
    there are no fills)."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    qs, fields, columns = _trade_query(portfolio, strategy, False, detail)
    floats = tuple(c for c in _TRADE_FLOATS if c in columns)
    at_date = fields.index("date")
    page = list(qs.values_list(*fields)[:rows])
    yield _frame(page, columns, floats=floats)
    while len(page) == rows:
        last_date, last_id = page[-1][at_date], page[-1][0]
        # (date, id) > (last_date, last_id); the date__gte half lets the (strategy, date)
        # index skip the rows already read instead of sorting every fill for each page
        after = Q(date__gt=last_date) | Q(id__gt=last_id)
        page = list(qs.filter(after, date__gte=last_date).values_list(*fields)[:rows])
        if page:
            yield _frame(page, columns, floats=floats)


def trade_recent_list(*, portfolio: Portfolio, limit: int = 20) -> list[Trade]:
    """The latest ``limit`` fills, newest first (1 query)."""
    return list(
        Trade.objects.filter(strategy__portfolio=portfolio)
        .select_related("strategy", "instrument")
        .order_by("-date", "-id")[:limit]
    )


def trade_page_list(*, strategy: Strategy, offset: int, limit: int) -> list[Trade]:
    """One page of a strategy's fills, newest first (1 query)."""
    return list(
        Trade.objects.filter(strategy=strategy)
        .select_related("instrument")
        .order_by("-date", "-id")[offset : offset + limit]
    )


def rebalance_event_frame(*, portfolio: Portfolio) -> pd.DataFrame:
    """Every RebalanceEvent (1 query): date, trigger, method, capital_moved, trades_count."""
    rows = list(
        RebalanceEvent.objects.filter(portfolio=portfolio)
        .order_by("date", "id")
        .values_list("date", "trigger", "method", "capital_moved", "trades_count")
    )
    columns = ["date", "trigger", "method", "capital_moved", "trades_count"]
    return _frame(rows, columns, floats=("capital_moved",))


def rebalance_event_list(*, portfolio: Portfolio, limit: int) -> list[RebalanceEvent]:
    """The latest ``limit`` rebalances, newest first (1 query)."""
    return list(RebalanceEvent.objects.filter(portfolio=portfolio).order_by("-date", "-id")[:limit])


def rebalance_request_list(
    *, portfolio: Portfolio, limit: int, pending_only: bool = False
) -> list[RebalanceRequest]:
    """Manual rebalance requests, newest first (1 query)."""
    qs = RebalanceRequest.objects.filter(portfolio=portfolio)
    if pending_only:
        qs = qs.filter(status=RebalanceRequest.Status.PENDING)
    return list(qs.select_related("event").order_by("-requested_at", "-id")[:limit])


def violation_list(
    *,
    portfolio: Portfolio,
    limit: int,
    severity: str | None = None,
    strategy_name: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    reviewed: bool | None = None,
    with_reviews: bool = False,
    offset: int = 0,
) -> list[Violation]:
    """Violations, newest first, filtered, rows ``offset`` to ``offset + limit`` (1 query);
    ``with_reviews``: the changes their reviews linked prefetched too (1 more when any
    match)."""
    qs = _violation_queryset(
        portfolio=portfolio,
        severity=severity,
        strategy_name=strategy_name,
        date_from=date_from,
        date_to=date_to,
        reviewed=reviewed,
    )
    qs = qs.select_related("limit", "strategy", "instrument")
    if with_reviews:
        qs = qs.prefetch_related("review_changes")
    return list(qs.order_by("-date", "-id")[offset : offset + limit])


def violation_count(
    *,
    portfolio: Portfolio,
    severity: str | None = None,
    strategy_name: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    reviewed: bool | None = None,
) -> int:
    """How many violations ``violation_list`` pages through with these filters (1 query)."""
    return _violation_queryset(
        portfolio=portfolio,
        severity=severity,
        strategy_name=strategy_name,
        date_from=date_from,
        date_to=date_to,
        reviewed=reviewed,
    ).count()


def _violation_queryset(
    *, portfolio, severity, strategy_name, date_from, date_to, reviewed
) -> QuerySet[Violation]:
    qs = Violation.objects.filter(portfolio=portfolio)
    if reviewed is not None:
        qs = qs.filter(acknowledged_at__isnull=not reviewed)
    if severity:
        qs = qs.filter(severity=severity)
    if strategy_name:
        qs = qs.filter(strategy__name=strategy_name)
    if date_from:
        qs = qs.filter(date__gte=date_from)
    if date_to:
        qs = qs.filter(date__lte=date_to)
    return qs


REVIEW_CANDIDATES_READ = 1000  # the newest; a page lists a few per violation


def review_candidate_list(*, violations: list[Violation], per_violation: int) -> dict:
    """Violation id -> the configuration changes a review of it may link (its portfolio's,
    made at or after it opened, by an operator: ``risk.selectors.
    violation_review_candidates``), oldest first, at most ``per_violation`` each, out of
    the newest ``REVIEW_CANDIDATES_READ`` (1 query; none without violations)."""
    if not violations:
        return {}
    since = min(v.opened_at for v in violations)
    newest = risk_selectors.violation_review_candidates(
        portfolio_id=violations[0].portfolio_id, since=since
    ).order_by("-at", "-id")[:REVIEW_CANDIDATES_READ]
    changes = list(reversed(newest))
    return {v.pk: [c for c in changes if c.at >= v.opened_at][:per_violation] for v in violations}


def status_change_list(*, limit: int) -> list[ConfigChange]:
    """Audit rows that changed a strategy's status, newest first (1 query)."""
    return list(ConfigChange.objects.filter(field="status").order_by("-at", "-id")[:limit])


# Recent activity: one query per source, each ordered by its bar date, newest first, and
# cut at ``limit`` rows, so the merged feed's ``limit`` newest items are among them.


def activity_trade_groups(*, portfolio: Portfolio, limit: int) -> list[dict]:
    """Fills summed per (bar, strategy, reason), newest bar first (1 query): dicts with
    date, strategy, reason, fills, buys, sells, bought and sold (money, > 0), cost and
    realized_pnl. One row per fill would flood the feed on a rebalance bar."""
    buy, sell = Q(side=Trade.Side.BUY), Q(side=Trade.Side.SELL)
    return list(
        Trade.objects.filter(strategy__portfolio=portfolio)
        .values("date", "reason", strategy_name=F("strategy__name"))
        .annotate(
            fills=Count("id"),
            buys=Count("id", filter=buy),
            sells=Count("id", filter=sell),
            bought=Coalesce(Sum("value", filter=buy), 0.0),
            sold=Coalesce(Sum("value", filter=sell), 0.0),
            cost_sum=Sum("cost"),
            realized=Sum("realized_pnl"),
        )
        .order_by("-date", "strategy_name", "reason")[:limit]
    )


def activity_rebalance_list(*, portfolio: Portfolio, limit: int) -> list[RebalanceEvent]:
    """The latest ``limit`` rebalances, newest first (1 query), each annotated with
    ``requested_by`` and ``request_source`` (of the first manual request it applied; None
    if none) and ``request_count`` (how many requests it applied)."""
    first = RebalanceRequest.objects.filter(event=OuterRef("pk")).order_by("requested_at", "id")
    count = (
        RebalanceRequest.objects.filter(event=OuterRef("pk"))
        .order_by()
        .values("event")
        .annotate(n=Count("id"))
        .values("n")
    )
    return list(
        RebalanceEvent.objects.filter(portfolio=portfolio)
        .annotate(
            requested_by=Subquery(first.values("requested_by")[:1]),
            request_source=Subquery(first.values("source")[:1]),
            request_count=Coalesce(Subquery(count[:1]), 0),
        )
        .order_by("-date", "-id")[:limit]
    )


def activity_violation_list(*, portfolio: Portfolio, limit: int) -> list[Violation]:
    """Violations by their latest event (resolved_on, else the breach date), newest first
    (1 query). Each gives up to two feed items, opened and resolved; the ``limit`` newest
    items of all violations are among these rows."""
    return list(
        Violation.objects.filter(portfolio=portfolio)
        .select_related("limit", "strategy", "instrument")
        .annotate(latest=Coalesce("resolved_on", "date"))
        .order_by("-latest", "-id")[:limit]
    )


def activity_status_change_list(*, portfolio: Portfolio, limit: int) -> list[ConfigChange]:
    """The portfolio's strategy status changes by the bar at which they took effect,
    newest first (1 query), annotated with ``effective``: ``bar_date`` for the risk
    manager's; for an operator's, the first bar after ``applies_after`` (the last applied
    bar when it was recorded). A row without ``applies_after`` (recorded by a surface that
    does not set it) falls back to the last bar a successful UpdateRun finished before
    the change; with neither, the change predates every bar and takes effect at the
    first. ``effective`` None: no bar applied since, it takes effect at the next one
    (those rows come first)."""
    bars = PortfolioSnapshot.objects.filter(portfolio=OuterRef("portfolio")).order_by("date")
    runs = UpdateRun.objects.filter(
        portfolio=OuterRef("portfolio"),
        status=UpdateRun.Status.SUCCESS,
        last_date__isnull=False,
        finished_at__lte=OuterRef("at"),
    ).order_by("-finished_at")
    qs = (
        ConfigChange.objects.filter(portfolio=portfolio, field="status")
        .annotate(after_bar=Coalesce("applies_after", Subquery(runs.values("last_date")[:1])))
        .annotate(
            effective=Coalesce(
                "bar_date",
                Case(
                    When(after_bar__isnull=True, then=Subquery(bars.values("date")[:1])),
                    default=Subquery(
                        bars.filter(date__gt=OuterRef("after_bar")).values("date")[:1]
                    ),
                ),
            )
        )
    )
    return list(qs.order_by(F("effective").desc(nulls_first=True), "-at", "-id")[:limit])


def config_change_list(*, portfolio: Portfolio, limit: int) -> list[ConfigChange]:
    """The audit trail of one portfolio (and global rows), newest first (1 query)."""
    qs = ConfigChange.objects.filter(Q(portfolio=portfolio) | Q(portfolio__isnull=True))
    return list(qs.order_by("-at", "-id")[:limit])


def risk_limit_list(*, portfolio: Portfolio) -> list[RiskLimit]:
    """Every limit of the portfolio, enabled or not (1 query)."""
    return list(
        RiskLimit.objects.filter(portfolio=portfolio)
        .select_related("strategy", "instrument")
        .order_by("scope", "name")
    )


def alert_channel_list(*, portfolio: Portfolio) -> list[AlertChannel]:
    """The portfolio's alert channels and the global ones (1 query)."""
    return list(
        AlertChannel.objects.filter(Q(portfolio=portfolio) | Q(portfolio__isnull=True)).order_by(
            "name"
        )
    )


def rebalance_request_pending_count(*, portfolio: Portfolio) -> int:
    """Manual requests waiting for the next bar (1 query)."""
    return RebalanceRequest.objects.filter(
        portfolio=portfolio, status=RebalanceRequest.Status.PENDING
    ).count()


def drawdown_reference(*, portfolio: Portfolio) -> dict:
    """What the portfolio drawdown limit measures at the last close, beside the all-time
    drawdown of the equity curve (2 queries): ``limit`` (equity over the peak since the risk
    manager last liquidated, minus 1; None before it measured), ``all_time`` (equity over
    the running peak since inception, minus 1), and ``reset_on`` / ``reset_by``: the bar of
    the latest liquidation, which moved the limit's reference peak to the equity after it,
    and the limit that caused it (None: the peak is the all-time one)."""
    last = portfolio.snapshots.order_by("-date").values("drawdown", "risk").first()
    if last is None:
        return {}
    liquidation = (
        Violation.objects.filter(portfolio=portfolio, action_taken="liquidate_all")
        .order_by("-date", "-id")
        .values("date", "limit__name")
        .first()
    )
    return {
        "limit": (last["risk"] or {}).get("limit_drawdown"),
        "all_time": last["drawdown"],
        "reset_on": liquidation["date"] if liquidation else None,
        "reset_by": liquidation["limit__name"] if liquidation else None,
    }


def bar_activity_counts(*, portfolio: Portfolio, on: date) -> dict[str, int]:
    """How many fills and violations the bar of ``on`` brought (2 queries)."""
    return {
        "trades": Trade.objects.filter(strategy__portfolio=portfolio, date=on).count(),
        "violations": Violation.objects.filter(portfolio=portfolio, date=on).count(),
    }


def note_map(*, strategy: Strategy) -> dict[tuple, dict]:
    """The strategy's notes (1 query, a row per tag): ``("trade", id)`` or
    ``("position", ticker)`` -> ``{"text", "tags" (sorted names), "author", "updated_at"}``."""
    from reporting.models import Note

    notes: dict[tuple, dict] = {}
    rows = Note.objects.filter(strategy=strategy).values_list(
        "trade_id", "ticker", "text", "author", "updated_at", "tags__name"
    )
    for trade_id, ticker, text, author, updated_at, tag in rows.order_by("id", "tags__name"):
        key = ("trade", trade_id) if trade_id else ("position", ticker)
        note = notes.setdefault(
            key, {"text": text, "tags": [], "author": author, "updated_at": updated_at}
        )
        if tag:
            note["tags"].append(tag)
    return notes


def order_list(*, strategy: Strategy, limit: int) -> list[PendingOrder]:
    """The strategy's latest decisions held for approval (trade approval), newest first:
    the one awaiting a review, if any, and the outcomes of the earlier ones."""
    return list(PendingOrder.objects.filter(strategy=strategy).order_by("-decided_on")[:limit])


def live_portfolio_id_subquery() -> Subquery:
    """The live portfolio's id (``portfolio_live_get``'s rule: the first non-backtest
    one) as a subquery, so defaulting to it costs no query of its own."""
    return Subquery(_live_portfolios().values("id")[:1])


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


def _count_of(queryset: QuerySet, outer: str) -> Coalesce:
    """The number of rows of ``queryset`` whose ``outer`` is the outer portfolio's id, as
    a subquery expression (0 when none)."""
    counted = (
        queryset.filter(**{outer: OuterRef("pk")})
        .order_by()
        .values(outer)
        .annotate(n=Count("id"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted), 0)


def portfolio_row_counts(*, portfolio: Portfolio) -> dict[str, int]:
    """How many rows each export table of ``portfolio`` holds (1 query): equity and risk
    (one a snapshot), trades, positions and violations."""
    counts = (
        Portfolio.objects.filter(pk=portfolio.pk)
        .annotate(
            n_snapshots=_count_of(PortfolioSnapshot.objects, "portfolio"),
            n_trades=_count_of(Trade.objects, "strategy__portfolio"),
            n_positions=_count_of(Position.objects, "strategy__portfolio"),
            n_violations=_count_of(Violation.objects, "portfolio"),
        )
        .values_list("n_snapshots", "n_trades", "n_positions", "n_violations")
        .first()
    ) or (0, 0, 0, 0)
    snapshots, trades, positions, violations = counts
    return {
        "equity": snapshots,
        "trades": trades,
        "positions": positions,
        "risk": snapshots,
        "violations": violations,
    }


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
    frame = pd.DataFrame.from_records(_raw_rows(qs), columns=columns, coerce_float=False)
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


def state_stamp_get(*, portfolio: Portfolio) -> tuple[int, object] | None:
    """The portfolio's committed state as ``(version, committed_at)``, or None before its
    first commit: no query when the portfolio was loaded with
    ``select_related("state_version")`` (as ``portfolio_shown_get`` does), else 1."""
    cached = portfolio._state.fields_cache
    if "state_version" in cached:
        row = cached["state_version"]
        return None if row is None else (row.version, row.committed_at)
    rows = StateVersion.objects.filter(portfolio=portfolio).values_list("version", "committed_at")
    return rows.first()


# --- risk page (issue 14): what the risk manager measured at the last close ---


def risk_measurement_get(*, portfolio: Portfolio, as_of: date) -> dict:
    """The risk manager's record of the close ``as_of`` (1 query): ``detail`` the
    snapshot's ``risk`` JSON (correlation matrix, risk contributions, marginal
    contributions and weights, ``risk.services.session``), ``diversification_ratio`` and
    ``window_bars``, the trailing return window it measured on (``RiskBook``; the
    default 60 when the portfolio has no risk book yet)."""
    from risk.engine.limits_config import DEFAULT_WINDOW_BARS

    row = (
        PortfolioSnapshot.objects.filter(portfolio=portfolio, date=as_of)
        .values_list("risk", "diversification_ratio", "portfolio__risk_book__window_bars")
        .first()
    )
    detail, ratio, bars = row if row is not None else ({}, None, None)
    return {
        "detail": detail or {},
        "diversification_ratio": ratio,
        "window_bars": bars or DEFAULT_WINDOW_BARS,
    }


def risk_window_frame(
    *, portfolio: Portfolio, strategies: list[Strategy], bars: int
) -> pd.DataFrame:
    """The unit returns the risk manager measured the last close on (2 queries): the
    ``bars`` applied dates before it (funding day excluded), dates x strategy names, the
    rows ``portfolio.selectors.unit_returns_tail`` rebuilds the manager's window from (at
    close t the window ends at t-1: t's return enters at the next close)."""
    from portfolio.selectors import unit_returns_tail

    dates, rows = unit_returns_tail(
        portfolio=portfolio, strategy_ids=[s.id for s in strategies], bars=bars + 1
    )
    names = [s.name for s in strategies]
    frame = pd.DataFrame(rows, index=pd.DatetimeIndex(dates), columns=names, dtype=float)
    return frame.iloc[:-1].iloc[-bars:] if len(frame) else frame


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
    up to ``end`` is added or deleted, so a frame read from them can be cached on it."""
    qs = PriceBar.objects.all() if end is None else PriceBar.objects.filter(date__lte=end)
    stamp = qs.order_by().aggregate(n=Count("id"), last=Max("id"))
    return int(stamp["n"]), int(stamp["last"] or 0)


def _raw_rows(qs) -> list[tuple]:
    """The rows of a ``values_list`` query of plain SQL types (text, integers, doubles,
    cast in SQL) straight from the cursor: the ORM's per-value converters are most of the
    read's time on 170,000 bars and change nothing for these types."""
    sql, params = qs.query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


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


def signal_trade_sizing_map(*, strategy: Strategy, tickers: list[str]) -> dict[str, dict]:
    """ticker -> the last signal fill of ``strategy`` in it: date, signed quantity, price
    and the ``sizing`` the update path stored with it (``Trade.sizing``; None on fills
    written before it existed), for ``tickers`` (1 query). The last is the highest id: the
    update path inserts fills in date order."""
    mine = Trade.objects.filter(
        strategy=strategy, reason=Trade.Reason.SIGNAL, instrument__ticker__in=tickers
    )
    last = mine.order_by().values("instrument").annotate(last=Max("id")).values("last")
    rows = Trade.objects.filter(id__in=Subquery(last)).values_list(
        "instrument__ticker", "date", "side", "quantity", "price", "sizing"
    )
    return {
        ticker: {
            "date": day,
            "quantity": (1.0 if side == Trade.Side.BUY else -1.0) * float(quantity),
            "price": float(price),
            "sizing": sizing or None,
        }
        for ticker, day, side, quantity, price, sizing in rows
    }
