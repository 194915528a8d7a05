"""The recent-activity feed (fills, rebalances, violations and status changes, one query
per source), the configuration audit trail, a bar's activity counts and a strategy's
notes.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Case, Count, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from portfolio.models import (
    ConfigChange,
    Portfolio,
    PortfolioSnapshot,
    RebalanceEvent,
    RebalanceRequest,
    Strategy,
    Trade,
    UpdateRun,
)
from risk.models import Violation


def status_change_list(*, limit: int) -> list[ConfigChange]:
    """Audit rows that changed a strategy's status, newest first (1 query)."""
    return list(ConfigChange.objects.filter(field="status").order_by("-at", "-id")[:limit])


# Recent activity: one query per source, each ordered by its bar date, newest first, and
# cut at ``limit`` rows, so the merged feed's ``limit`` newest items are among them.


def activity_trade_groups(*, portfolio: Portfolio, limit: int) -> list[dict]:
    """Fills summed per (bar, strategy, reason), newest bar first (1 query): dicts with
    date, strategy, reason, fills, buys, sells, bought and sold (money, > 0), cost and
    realized_pnl. One row per fill would flood the feed on a rebalance bar. Only the
    fills of the ``limit`` newest fill dates are summed (the groups wanted all fall on
    them; a subquery on the (strategy, date) index): not every fill of the history, which
    took 80 ms of every overview request on the demo."""
    buy, sell = Q(side=Trade.Side.BUY), Q(side=Trade.Side.SELL)
    fills = Trade.objects.filter(strategy__portfolio=portfolio)
    newest = fills.order_by("-date").values("date").distinct()[limit - 1 : limit]
    since = Coalesce(Subquery(newest), Value(date.min))
    return list(
        fills.filter(date__gte=since)
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
