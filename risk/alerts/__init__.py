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

Layout (by responsibility, one transport per integration as healthchecks does):
``outbox`` (enqueue, claim under a lease, send in threads, record each outcome),
``messages`` (a violation or a channel test as a plain ``AlertMessage``) and
``transports`` (``base``: DeliveryError and config readers; ``web``: the HTTP transport;
``mail``, ``webhook``, ``slack``, ``discord``, ``sms`` with ``twilio``, ``pagerduty``).
The public names are re-exported here, so ``from risk.alerts import ...`` is unchanged.
"""

from __future__ import annotations

from risk.alerts.messages import channel_test_message, violation_message
from risk.alerts.outbox import (
    CLAIM_LEASE,
    ERROR_MAX_CHARS,
    MAX_PARALLEL_SENDS,
    RESOLVE_KINDS,
    SCHEDULE_NAME,
    TASK,
    DeliveryReport,
    alert_channel_test,
    alert_deliveries_retry,
    alerts_deliver,
    alerts_enqueue,
    alerts_enqueue_resolved,
)
from risk.alerts.transports import SENDERS
from risk.alerts.transports.base import DeliveryError
from risk.alerts.transports.sms import SMS_PROVIDERS, SmsProvider
from risk.alerts.transports.twilio import TwilioSms
from risk.alerts.transports.web import BODY_EXCERPT_CHARS, http_send

__all__ = [
    "BODY_EXCERPT_CHARS",
    "CLAIM_LEASE",
    "ERROR_MAX_CHARS",
    "MAX_PARALLEL_SENDS",
    "RESOLVE_KINDS",
    "SCHEDULE_NAME",
    "SENDERS",
    "SMS_PROVIDERS",
    "TASK",
    "DeliveryError",
    "DeliveryReport",
    "SmsProvider",
    "TwilioSms",
    "alert_channel_test",
    "alert_deliveries_retry",
    "alerts_deliver",
    "alerts_enqueue",
    "alerts_enqueue_resolved",
    "channel_test_message",
    "http_send",
    "violation_message",
]
