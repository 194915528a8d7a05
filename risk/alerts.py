"""Alert outbox: enqueue inside the update's transaction, deliver after it commits.

Contract for the risk manager:

- Call ``alerts_enqueue(violations=[...])`` inside the update's transaction, right after
  the ``Violation`` rows are saved. It writes one ``AlertDelivery`` per (violation,
  enabled channel of the violation's portfolio or global channel, whose ``min_severity``
  admits the severity), at most once per (channel, violation): a second call creates
  nothing. It never sends; it only registers one ``transaction.on_commit`` hook per
  transaction. Violations of backtest portfolios are never alerted.
- Call ``alerts_enqueue_resolved(violations=[...])`` in the same transaction for the
  violations the chunk resolved, after ``alerts_enqueue``. Channels that close what they
  opened (``RESOLVE_KINDS``: PagerDuty) get one ``resolve`` delivery per channel that holds
  the violation's ``open`` delivery, still enabled, at most once (the same unique
  constraint, per event); other kinds are told of openings only. A resolve row is not
  claimed while its channel's open row for that violation is unsent, so it never
  overtakes the trigger.
- After commit the hook queues the django-q2 task ``risk.tasks.deliver_alerts`` (always a
  cluster here: the ORM broker embedded, Redis in production; with ``Q_CLUSTER["sync"]``
  it runs inline). The hook is robust: a broker error is logged, never raised, and the
  every-minute schedule (declared in ``operations.schedules``) delivers the rows anyway. If the
  transaction rolls back the deliveries vanish with the violations.
- ``alerts_deliver`` claims due rows in a short transaction, sends with the database
  released (a slow webhook holds no lock and delays no update), in parallel threads with
  per-request timeouts, then records each outcome. A failure is retried with backoff
  forever (``risk.engine.alert_formats.backoff_seconds``); nothing raises.

Concurrency: the claim moves the rows' ``next_attempt_at`` a lease (``CLAIM_LEASE``) ahead,
so a second runner does not pick them up; on PostgreSQL the claim query uses
``select_for_update(skip_locked=True)`` so two runners never wait on or claim the same rows.
SQLite has no row locks: its IMMEDIATE transactions serialize the claims instead. A worker
killed mid-send leaves rows that come due again when the lease ends: delivery is at least
once, and receivers can deduplicate on ``violation_id``.
"""

from __future__ import annotations

import http.client
import logging
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from risk.engine import alert_formats as fmt
from risk.models import AlertChannel, AlertDelivery, Violation

log = logging.getLogger(__name__)

SCHEDULE_NAME = "quantsite: deliver_alerts"
TASK = "risk.tasks.deliver_alerts"
CLAIM_LEASE = timedelta(minutes=15)  # > limit * timeout / MAX_PARALLEL_SENDS
MAX_PARALLEL_SENDS = 4
ERROR_MAX_CHARS = 2000
BODY_EXCERPT_CHARS = 300


class DeliveryError(Exception):
    """A channel refused or could not be reached; the message is stored in last_error."""


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


def alert_channel_test(*, channel: AlertChannel) -> AlertDelivery:
    """Queue a test alert (no violation) on one channel, sent after commit."""
    msg = _test_message(channel)
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


# --- messages -----------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def violation_message(violation: Violation) -> fmt.AlertMessage:
    """The plain-data alert for a violation (its status as of now)."""
    return fmt.AlertMessage(
        portfolio=violation.portfolio.name,
        limit=violation.limit.name,
        severity=violation.severity,
        scope=violation.limit.scope,
        strategy=violation.strategy.name if violation.strategy_id else None,
        ticker=violation.instrument.ticker if violation.instrument_id else None,
        value=_finite(violation.value),
        threshold=_finite(violation.threshold),
        direction=violation.limit.direction,
        action=violation.action_taken,
        date=violation.date.isoformat(),
        status=violation.status,
        note=violation.message,
        violation_id=violation.pk,
    )


def _test_message(channel: AlertChannel) -> fmt.AlertMessage:
    name = channel.portfolio.name if channel.portfolio_id else "all portfolios"
    return fmt.AlertMessage(portfolio=name, note=f"Channel {channel.name} ({channel.kind}).")


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
    msg = msg or _test_message(channel)
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


# --- senders: channel config -> a no-argument send ----------------------------------------


def _timeout(config: dict) -> float:
    raw = config.get("timeout", fmt.DEFAULT_TIMEOUT_SECONDS)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0:
        raise DeliveryError(f"config timeout must be a positive number of seconds, got {raw!r}")
    return float(raw)


def _required(config: dict, *keys: str) -> str:
    for key in keys:
        value = config.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise DeliveryError(f"channel config needs {' or '.join(keys)}")


def _send_email(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    recipients = config.get("recipients") or []
    if isinstance(recipients, str):
        recipients = [recipients]
    if not recipients:
        raise DeliveryError("email channel has no recipients")
    options: dict = {"fail_silently": False}
    if "timeout" in config:
        options["timeout"] = _timeout(config)
    server = str(config.get("smtp_server") or "").strip()
    if server:  # "host" or "host:port"; credentials and TLS still come from the settings
        host, _, port = server.partition(":")
        options["host"] = host
        if port:
            options["port"] = int(port)
    email = EmailMessage(
        subject=delivery.subject,
        body=delivery.body,
        from_email=config.get("from_email") or settings.DEFAULT_FROM_EMAIL,
        to=list(recipients),
    )

    def job() -> None:
        if get_connection(**options).send_messages([email]) != 1:
            raise DeliveryError("the mail backend sent nothing")

    return job


def _send_http(request: fmt.HttpRequest):
    return lambda: http_send(request)


def _send_webhook(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    headers = config.get("headers") or {}
    if not isinstance(headers, dict):
        raise DeliveryError("webhook headers must be a mapping")
    url = _url(_required(config, "url"))
    return _send_http(fmt.webhook_request(msg, url=url, headers=headers, timeout=_timeout(config)))


def _send_slack(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    url = _url(_required(config, "webhook_url", "url"))
    return _send_http(fmt.slack_request(msg, url=url, timeout=_timeout(config)))


def _send_discord(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    url = _url(_required(config, "webhook_url", "url"))
    return _send_http(fmt.discord_request(msg, url=url, timeout=_timeout(config)))


class SmsProvider(Protocol):
    """Sends one text message; returns the provider's message id or raises DeliveryError."""

    def send(self, *, to: str, body: str) -> str: ...


class TwilioSms:
    """Twilio Programmable Messaging; ``api_base`` points tests at a local server."""

    def __init__(self, config: dict, *, timeout: float):
        self.sid = _required(config, "twilio_sid", "account_sid")
        self.token = _required(config, "twilio_token", "auth_token")
        self.from_number = _required(config, "from_number")
        self.api_base = _url(config.get("api_base") or fmt.TWILIO_API_BASE)
        self.timeout = timeout

    def send(self, *, to: str, body: str) -> str:
        request = fmt.twilio_request(
            sid=self.sid,
            token=self.token,
            to=to,
            from_=self.from_number,
            body=body,
            api_base=self.api_base,
            timeout=self.timeout,
        )
        status, content = http_send(request)
        try:
            return fmt.twilio_message_sid(status, content)
        except ValueError as exc:
            raise DeliveryError(f"{exc}: {_excerpt(content)}") from None


SMS_PROVIDERS: dict[str, Callable[..., SmsProvider]] = {"twilio": TwilioSms}


def _send_sms(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    name = config.get("provider", "twilio")
    if name not in SMS_PROVIDERS:
        raise DeliveryError(f"unknown SMS provider {name!r}; known: {', '.join(SMS_PROVIDERS)}")
    provider = SMS_PROVIDERS[name](config, timeout=_timeout(config))
    to = _required(config, "phone_number", "to")
    return lambda: provider.send(to=to, body=fmt.sms_text(msg))


def _send_pagerduty(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    """Events API v2: trigger on an opening (or a channel test), resolve on a recovery."""
    routing_key = _required(config, "routing_key")
    api_base = _url(config.get("api_base") or fmt.PAGERDUTY_API_BASE)
    if delivery.violation_id:
        dedup_key = fmt.pagerduty_dedup_key(delivery.violation_id)
        when = delivery.violation.opened_at
    else:
        dedup_key, when = f"quantsite-test-{delivery.pk}", delivery.created_at
    resolve = delivery.event == AlertDelivery.Event.RESOLVE
    request = fmt.pagerduty_request(
        msg,
        routing_key=routing_key,
        action="resolve" if resolve else "trigger",
        dedup_key=dedup_key,
        timestamp=when.isoformat(),
        api_base=api_base,
        timeout=_timeout(config),
    )

    def job() -> None:
        status, content = http_send(request)
        try:
            fmt.pagerduty_accepted(status, content)
        except ValueError as exc:
            raise DeliveryError(f"{exc}: {_excerpt(content)}") from None

    return job


SENDERS = {
    AlertChannel.Kind.EMAIL: _send_email,
    AlertChannel.Kind.WEBHOOK: _send_webhook,
    AlertChannel.Kind.SLACK: _send_slack,
    AlertChannel.Kind.DISCORD: _send_discord,
    AlertChannel.Kind.SMS: _send_sms,
    AlertChannel.Kind.PAGERDUTY: _send_pagerduty,
}


# --- HTTP transport -----------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure (3xx in last_error), never a silent re-POST elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError(f"URL must be http or https, got {url[:60]!r}")
    return url


def _excerpt(content: bytes) -> str:
    text = content[: BODY_EXCERPT_CHARS * 4].decode("utf-8", "replace").strip()
    return " ".join(text.split())[:BODY_EXCERPT_CHARS] or "(empty body)"


def http_send(request: fmt.HttpRequest) -> tuple[int, bytes]:
    """Send one request; (status, body) on a 2xx, DeliveryError otherwise. Errors name the
    host only: webhook paths are secrets."""
    host = urlsplit(request.url).hostname or "?"
    req = urllib.request.Request(
        request.url, data=request.body, headers=request.headers, method=request.method
    )
    try:
        with _OPENER.open(req, timeout=request.timeout) as response:
            return response.status, response.read(1 << 16)
    except urllib.error.HTTPError as exc:
        content = exc.read(4096) if exc.fp else b""
        raise DeliveryError(f"HTTP {exc.code} from {host}: {_excerpt(content)}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise DeliveryError(f"timed out after {request.timeout:g} s ({host})") from None
        raise DeliveryError(f"cannot reach {host}: {exc.reason}") from None
    except TimeoutError:
        raise DeliveryError(f"timed out after {request.timeout:g} s ({host})") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__} talking to {host}: {exc}") from None
