"""One transport per integration, as healthchecks gives each its own: a sender takes the
channel's config, the alert and its delivery row, checks the config (raising
``DeliveryError``) and returns a no-argument send that runs in a thread with the database
released. ``SENDERS`` maps each ``AlertChannel.Kind`` to its sender."""

from __future__ import annotations

from risk.alerts.transports.discord import send_discord
from risk.alerts.transports.mail import send_email
from risk.alerts.transports.pagerduty import send_pagerduty
from risk.alerts.transports.slack import send_slack
from risk.alerts.transports.sms import send_sms
from risk.alerts.transports.webhook import send_webhook
from risk.models import AlertChannel

SENDERS = {
    AlertChannel.Kind.EMAIL: send_email,
    AlertChannel.Kind.WEBHOOK: send_webhook,
    AlertChannel.Kind.SLACK: send_slack,
    AlertChannel.Kind.DISCORD: send_discord,
    AlertChannel.Kind.SMS: send_sms,
    AlertChannel.Kind.PAGERDUTY: send_pagerduty,
}
