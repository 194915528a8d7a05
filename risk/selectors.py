"""Read-side queries of the risk app (HackSoft-style selectors)."""

from __future__ import annotations

from portfolio.models import Portfolio
from risk.models import Violation

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
