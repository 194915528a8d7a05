"""Trade approval: an operator's review of the orders an approval-gated strategy decided
(``PendingOrder``), shared by the strategy page, the configuration page, the admin and
the API.

A decision taken at the close of bar t waits for a review until the update path applies
bar t+1. Approved, its signal orders fill at the close of t+1 (sized again at that close,
as every signal fill is); rejected or not reviewed in time, they never fill and the row
says why (``PendingOrder.cause``). The review is stored on the row before the next bar is
applied, and the update path reads the stored reviews when it loads the book, so a
replay of the same bars with the same reviews trades exactly as the live path did
(DESIGN "Live equals replay"). A review and the update path's commit both lock the
portfolio row: a review that lands while a chunk is being computed makes the update
compute it again (``operations.update``); one that comes after the commit finds its
decision resolved and is refused.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from portfolio.engine.errors import ConfigError
from portfolio.models import PendingOrder, Portfolio
from portfolio.services.controls import Origin, config_change_record

REVIEWS = {"approve": PendingOrder.Status.APPROVED, "reject": PendingOrder.Status.REJECTED}
NOTE_MAX = 2000


def order_review(*, order_id: int, decision: str, origin: Origin, note: str = "") -> PendingOrder:
    """Approve or reject (``decision``: approve | reject) the pending order ``order_id``.

    Refused with ``ConfigError`` (nothing changed) when the decision is not one of the
    two, the note is too long, or the order is no longer awaiting a review: reviewed
    already, or resolved because the next bar was applied (then it expired). The review is
    one audit row (``ConfigChange``, field ``review``) with who, from where and the note."""
    status = REVIEWS.get(decision)
    if status is None:
        raise ConfigError("decision", "must be approve or reject")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ConfigError("note", f"at most {NOTE_MAX} characters")
    with transaction.atomic():
        row = PendingOrder.objects.select_related("strategy").filter(pk=order_id).first()
        if row is None:
            raise ConfigError(f"order {order_id}", "does not exist")
        portfolio = Portfolio.objects.select_for_update().get(pk=row.strategy.portfolio_id)
        row = PendingOrder.objects.select_for_update().select_related("strategy").get(pk=row.pk)
        where = f"order {row.pk} ({row.strategy.name}, {row.decided_on})"
        if row.status != PendingOrder.Status.PENDING:
            state = row.get_status_display().lower()
            raise ConfigError(where, f"is {state}, not awaiting a review")
        if portfolio.last_applied_date != row.decided_on:
            # cannot happen while the update path resolves every decision at the next bar;
            # kept as the rule itself rather than trusting the status alone
            raise ConfigError(where, "expired: the next bar has been applied")
        row.status = status
        row.reviewed_by, row.reviewed_at = origin.actor[:150], timezone.now()
        row.review_note = note
        row.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
        config_change_record(
            obj=row.strategy,
            portfolio=portfolio,
            field=f"orders of {row.decided_on}",
            before=PendingOrder.Status.PENDING.value,
            after=status.value if not note else f"{status.value}: {note}"[:500],
            origin=origin,
        )
    return row
