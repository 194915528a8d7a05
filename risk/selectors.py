"""Read-side queries of the risk app (HackSoft-style selectors)."""

from __future__ import annotations

from django.db.models import QuerySet

from portfolio.models import ConfigChange, Portfolio, PortfolioSnapshot
from risk.models import AlertDelivery, ScenarioRun, Violation

# Every risk measure the risk manager stores on a PortfolioSnapshot (formulas in
# risk/engine/metrics.py), with the close's exposure figures they are read against.
RISK_SNAPSHOT_FIELDS = (
    "id",
    "portfolio_id",
    "date",
    "equity",
    "gross_exposure",
    "net_exposure",
    "leverage",
    "drawdown",
    "volatility",
    "var_95",
    "var_99",
    "cvar_95",
    "cvar_99",
    "diversification_ratio",
    "max_correlation",
    "concentration_top5",
    "open_mae",
    "exposure_scale",
    "risk",
)

# Output key -> ORM path of one violation as the exports and the backtest summary give it.
VIOLATION_FIELDS = {
    "date": "date",
    "limit": "limit__name",
    "severity": "severity",
    "strategy": "strategy__name",
    "ticker": "instrument__ticker",
    "value": "value",
    "threshold": "threshold",
    "action": "action_taken",
    "status": "status",
    "message": "message",
    "resolved_on": "resolved_on",
    "opened_at": "opened_at",
    "resolved_at": "resolved_at",
}


def violation_records(*, portfolio: Portfolio) -> list[dict]:
    """Every violation of ``portfolio`` in bar order (date, then the order opened), as
    ``VIOLATION_FIELDS`` dicts. 1 query."""
    rows = (
        Violation.objects.filter(portfolio=portfolio)
        .order_by("date", "id")
        .values_list(*VIOLATION_FIELDS.values())
    )
    return [dict(zip(VIOLATION_FIELDS, row, strict=True)) for row in rows]


def violation_list() -> QuerySet[Violation]:
    """Every violation with its limit, strategy and instrument joined and the changes its
    review linked prefetched, newest first (lazy, 2 queries)."""
    return (
        Violation.objects.select_related("limit", "strategy", "instrument")
        .prefetch_related("review_changes")
        .order_by("-date", "-id")
    )


def violation_review_candidates(*, portfolio_id: int, since) -> QuerySet[ConfigChange]:
    """The configuration changes a review of a violation that opened at ``since`` may link
    (``risk.services.controls.violation_review``): the portfolio's own, made at or after
    ``since``, by an operator (every source but the risk manager's), oldest first (lazy,
    1 query)."""
    return (
        ConfigChange.objects.filter(portfolio_id=portfolio_id, at__gte=since)
        .exclude(source="risk")
        .order_by("at", "id")
    )


def risk_snapshot_list() -> QuerySet[PortfolioSnapshot]:
    """The portfolio snapshots' risk columns (``RISK_SNAPSHOT_FIELDS`` only), newest
    first (lazy, 1 query)."""
    return PortfolioSnapshot.objects.only(*RISK_SNAPSHOT_FIELDS).order_by("-date", "-id")


def alert_delivery_list() -> QuerySet[AlertDelivery]:
    """The alert outbox with its channel joined, newest first (lazy, 1 query)."""
    return AlertDelivery.objects.select_related("channel").order_by("-created_at", "-id")


def scenario_run_list() -> QuerySet[ScenarioRun]:
    """Every stored scenario result, newest first (the API's list)."""
    return ScenarioRun.objects.select_related("portfolio").order_by("-created_at", "-id")


def scenarios_latest(
    *, portfolio: Portfolio, kinds: tuple[str, ...] | None = None, scan: int = 400
) -> dict[tuple, ScenarioRun]:
    """The newest successful ``ScenarioRun`` of each (kind, name, mode) of ``portfolio``
    (of ``kinds`` only, when given), keyed so; two queries whatever the history: the keys
    of the newest ``scan`` rows (without their results), then the results of the rows
    chosen."""
    rows = ScenarioRun.objects.filter(portfolio=portfolio, status=ScenarioRun.Status.SUCCESS)
    if kinds is not None:
        rows = rows.filter(kind__in=kinds)
    rows = rows.order_by("-created_at", "-id").values_list("id", "kind", "name", "params")[:scan]
    chosen: dict[tuple, int] = {}
    for pk, kind, name, params in rows:
        chosen.setdefault((kind, name, (params or {}).get("mode", "")), pk)
    runs = {r.pk: r for r in ScenarioRun.objects.filter(pk__in=chosen.values())}
    return {key: runs[pk] for key, pk in chosen.items() if pk in runs}
