"""The alert package's layout: one transport per channel kind, and the names callers
import from ``risk.alerts`` are the outbox's and the transports' own objects."""

from __future__ import annotations

import logging

import risk.alerts as alerts
from risk.alerts import outbox
from risk.alerts.transports import SENDERS, base, discord, mail, pagerduty, slack, sms, webhook
from risk.models import AlertChannel


def test_every_channel_kind_has_exactly_one_transport():
    assert set(SENDERS) == set(AlertChannel.Kind)
    assert SENDERS[AlertChannel.Kind.EMAIL] is mail.send_email
    assert SENDERS[AlertChannel.Kind.WEBHOOK] is webhook.send_webhook
    assert SENDERS[AlertChannel.Kind.SLACK] is slack.send_slack
    assert SENDERS[AlertChannel.Kind.DISCORD] is discord.send_discord
    assert SENDERS[AlertChannel.Kind.SMS] is sms.send_sms
    assert SENDERS[AlertChannel.Kind.PAGERDUTY] is pagerduty.send_pagerduty


def test_the_public_names_are_re_exported_not_copied():
    for name in ("alerts_enqueue", "alerts_enqueue_resolved", "alerts_deliver", "CLAIM_LEASE"):
        assert getattr(alerts, name) is getattr(outbox, name)
    assert alerts.DeliveryError is base.DeliveryError
    assert set(alerts.__all__) <= set(dir(alerts))


def test_the_outbox_still_logs_as_risk_alerts():
    assert outbox.log is logging.getLogger("risk.alerts")
