"""The alert outbox: enqueue inside the update's transaction, claim due rows under a
lease, send them through the channel's transport with the database released, and record
each outcome (the contract is in ``risk.alerts``' docstring)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from risk.alerts.messages import channel_test_message, violation_message
from risk.alerts.transports import SENDERS
from risk.alerts.transports.base import DeliveryError
from risk.engine import alert_formats as fmt
from risk.models import AlertChannel, AlertDelivery, Violation

log = logging.getLogger("risk.alerts")  # the name operators filter on, kept from one module

SCHEDULE_NAME = "quantsite: deliver_alerts"
TASK = "risk.tasks.deliver_alerts"
CLAIM_LEASE = timedelta(minutes=15)  # > limit * timeout / MAX_PARALLEL_SENDS
MAX_PARALLEL_SENDS = 4
ERROR_MAX_CHARS = 2000


@dataclass(frozen=True)
class DeliveryReport:
    attempted: int
    sent: int
    failed: int


# --- enqueue (inside the caller's transaction) --------------------------------------------


def alerts_enqueue(*, violations: Iterable[Violation]) -> int:
    """Write the outbox rows for saved violations; return how many were created."""
    ids = [v.pk for v in violations]
    if not ids:
        return 0
    rows = (
        Violation.objects.filter(pk__in=ids, portfolio__is_backtest=False)
        .select_related("portfolio", "limit", "strategy", "instrument")
        .order_by("pk")
    )
    rows = list(rows)
    channels = list(
        AlertChannel.objects.filter(enabled=True).filter(
            Q(portfolio__isnull=True) | Q(portfolio_id__in={v.portfolio_id for v in rows})
        )
    )
    existing = set(
        AlertDelivery.objects.filter(
            violation_id__in=ids, event=AlertDelivery.Event.OPEN
        ).values_list("channel_id", "violation_id")
    )
    new = []
    for violation in rows:
        msg = violation_message(violation)
        subject, body = fmt.alert_subject(msg), fmt.alert_body(msg)
        for channel in channels:
            if channel.portfolio_id not in (None, violation.portfolio_id):
                continue
            if not fmt.severity_admits(channel.min_severity, violation.severity):
                continue
            if (channel.pk, violation.pk) in existing:
                continue
            new.append(
                AlertDelivery(channel=channel, violation=violation, subject=subject, body=body)
            )
    # The partial unique constraint backs the check above against a concurrent enqueue.
    AlertDelivery.objects.bulk_create(new, ignore_conflicts=True)
    if new:
        _deliver_on_commit()
    return len(new)


RESOLVE_KINDS = frozenset({AlertChannel.Kind.PAGERDUTY})


def alerts_enqueue_resolved(*, violations: Iterable[Violation]) -> int:
    """Write the ``resolve`` outbox rows of resolved violations (see the module docstring);
    return how many were created."""
    ids = [v.pk for v in violations if v.pk is not None]
    if not ids:
        return 0
    opened = AlertDelivery.objects.filter(
        violation_id__in=ids,
        violation__status=Violation.Status.RESOLVED,
        violation__portfolio__is_backtest=False,
        event=AlertDelivery.Event.OPEN,
        channel__enabled=True,
        channel__kind__in=RESOLVE_KINDS,
    ).select_related("channel", "violation__portfolio", "violation__limit")
    opened = opened.select_related("violation__strategy", "violation__instrument")
    done = set(
        AlertDelivery.objects.filter(
            violation_id__in=ids, event=AlertDelivery.Event.RESOLVE
        ).values_list("channel_id", "violation_id")
    )
    new = []
    for row in opened.order_by("violation_id", "channel_id"):
        if (row.channel_id, row.violation_id) in done:
            continue
        v = row.violation
        msg = violation_message(v)
        resolved_on = v.resolved_on.isoformat() if v.resolved_on else "-"
        new.append(
            AlertDelivery(
                channel=row.channel,
                violation=v,
                event=AlertDelivery.Event.RESOLVE,
                subject=fmt.resolved_subject(msg, resolved_on=resolved_on),
                body=fmt.alert_body(msg),
            )
        )
    AlertDelivery.objects.bulk_create(new, ignore_conflicts=True)
    if new:
        _deliver_on_commit()
    return len(new)


def alerts_enqueue_notice(
    *,
    portfolio,
    title: str,
    severity: str,
    note: str,
    day: date | None,
    value: float | None = None,
    threshold: float | None = None,
) -> int:
    """Queue an alert that is not a limit's violation (a correlation regime shift, say)
    on every enabled channel of ``portfolio`` (or of all portfolios) whose minimum
    severity admits ``severity``; sent after commit. Returns how many were queued."""
    msg = fmt.AlertMessage(
        portfolio=portfolio.name,
        limit=title,
        severity=severity,
        scope="portfolio",
        value=value,
        threshold=threshold,
        direction="max",
        date=day.isoformat() if day else None,
        status="open",
        note=note,
    )
    channels = AlertChannel.objects.filter(enabled=True).filter(
        Q(portfolio__isnull=True) | Q(portfolio=portfolio)
    )
    rows = [
        AlertDelivery(channel=c, subject=fmt.alert_subject(msg), body=fmt.alert_body(msg))
        for c in channels
        if fmt.severity_admits(c.min_severity, severity)
    ]
    AlertDelivery.objects.bulk_create(rows)
    if rows:
        _deliver_on_commit()
    return len(rows)


def alert_channel_test(*, channel: AlertChannel) -> AlertDelivery:
    """Queue a test alert (no violation) on one channel, sent after commit."""
    msg = channel_test_message(channel)
    delivery = AlertDelivery.objects.create(
        channel=channel, subject=fmt.alert_subject(msg), body=fmt.alert_body(msg)
    )
    _deliver_on_commit()
    return delivery


def alert_deliveries_retry(*, deliveries: QuerySet, now: datetime | None = None) -> int:
    """Make unsent deliveries due now (admin "Retry now"); return how many."""
    count = deliveries.exclude(status=AlertDelivery.Status.SENT).update(
        next_attempt_at=now or timezone.now()
    )
    if count:
        _deliver_on_commit()
    return count


def _queue_delivery() -> None:
    try:
        from django_q.tasks import async_task

        async_task(TASK)
    except Exception:  # a broker outage must not fail the committed update
        log.exception("could not queue %s; the every-minute schedule will deliver", TASK)


def _deliver_on_commit() -> None:
    """Register the delivery kick once per transaction, however many enqueues it holds."""
    pending = getattr(transaction.get_connection(), "run_on_commit", ())
    if any(entry[1] is _queue_delivery for entry in pending):
        return
    transaction.on_commit(_queue_delivery, robust=True)


# --- deliver (outside any transaction) ----------------------------------------------------


def alerts_deliver(*, now: datetime | None = None, limit: int = 100) -> DeliveryReport:
    """Send the due deliveries (pending or failed, next_attempt_at null or <= now)."""
    now = now or timezone.now()
    claimed = _claim(now=now, limit=limit)
    if not claimed:
        return DeliveryReport(0, 0, 0)
    jobs = [_prepare(d) for d in claimed]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_SENDS, len(jobs))) as pool:
        errors = list(pool.map(_run, jobs))
    for delivery, error in zip(claimed, errors, strict=True):
        _record(delivery, error=error, now=now)
    failed = sum(error is not None for error in errors)
    return DeliveryReport(len(claimed), len(claimed) - failed, failed)


def _claim(*, now: datetime, limit: int) -> list[AlertDelivery]:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    with transaction.atomic():
        qs = AlertDelivery.objects.filter(
            due, status__in=[AlertDelivery.Status.PENDING, AlertDelivery.Status.FAILED]
        ).order_by(F("next_attempt_at").asc(nulls_first=True), "pk")
        qs = qs.exclude(Q(event=AlertDelivery.Event.RESOLVE) & Exists(_open_unsent()))
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("pk", flat=True)[:limit])
        AlertDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now + CLAIM_LEASE)
    return list(
        AlertDelivery.objects.filter(pk__in=ids)
        .select_related(
            "channel__portfolio",
            "violation__portfolio",
            "violation__limit",
            "violation__strategy",
            "violation__instrument",
        )
        .order_by("pk")
    )


def _open_unsent() -> QuerySet:
    """The unsent ``open`` delivery of a ``resolve`` row's channel and violation: the resolve
    waits for it (sent in one batch, or the trigger in backoff, PagerDuty would get the
    resolve first and then open an incident nothing closes)."""
    return AlertDelivery.objects.filter(
        channel_id=OuterRef("channel_id"),
        violation_id=OuterRef("violation_id"),
        event=AlertDelivery.Event.OPEN,
    ).exclude(status=AlertDelivery.Status.SENT)


def _record(delivery: AlertDelivery, *, error: str | None, now: datetime) -> None:
    rows = AlertDelivery.objects.filter(pk=delivery.pk)
    if error is None:
        rows.update(
            status=AlertDelivery.Status.SENT,
            attempts=F("attempts") + 1,
            sent_at=now,
            next_attempt_at=None,
            last_error="",
        )
        return
    attempts = delivery.attempts + 1
    log.warning("alert delivery %s failed (attempt %s): %s", delivery.pk, attempts, error)
    rows.update(
        status=AlertDelivery.Status.FAILED,
        attempts=F("attempts") + 1,
        last_error=error[:ERROR_MAX_CHARS],
        next_attempt_at=now + timedelta(seconds=fmt.backoff_seconds(attempts)),
    )


def _run(job: Callable[[], None]) -> str | None:
    """Run one send; the error text, or None when it went out. Never raises."""
    try:
        job()
    except DeliveryError as exc:
        return str(exc)
    except Exception as exc:  # a bug in one sender must not stop the others
        return f"{type(exc).__name__}: {exc}"
    return None


def _prepare(delivery: AlertDelivery) -> Callable[[], None]:
    """Everything that needs the database happens here, so the send runs in a thread."""
    channel = delivery.channel
    msg = violation_message(delivery.violation) if delivery.violation_id else None
    msg = msg or channel_test_message(channel)
    sender = SENDERS.get(channel.kind)
    if sender is None:
        return _fail(f"unknown channel kind {channel.kind!r}")
    try:
        return sender(channel.config or {}, msg, delivery)
    except DeliveryError as exc:
        return _fail(str(exc))
    except Exception as exc:  # a malformed config fails this channel only
        return _fail(f"bad channel config: {type(exc).__name__}: {exc}")


def _fail(error: str) -> Callable[[], None]:
    def job() -> None:
        raise DeliveryError(error)

    return job
