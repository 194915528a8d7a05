"""Slack: an incoming-webhook message."""

from __future__ import annotations

from risk.alerts.transports.base import config_required, config_timeout
from risk.alerts.transports.web import checked_url, send_request
from risk.engine import alert_formats as fmt
from risk.models import AlertDelivery


def send_slack(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    url = checked_url(config_required(config, "webhook_url", "url"))
    return send_request(fmt.slack_request(msg, url=url, timeout=config_timeout(config)))
