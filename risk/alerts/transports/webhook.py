"""Generic webhook: the alert as JSON, POSTed to the channel's URL with its headers."""

from __future__ import annotations

from risk.alerts.transports.base import DeliveryError, config_required, config_timeout
from risk.alerts.transports.web import checked_url, send_request
from risk.engine import alert_formats as fmt
from risk.models import AlertDelivery


def send_webhook(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    headers = config.get("headers") or {}
    if not isinstance(headers, dict):
        raise DeliveryError("webhook headers must be a mapping")
    url = checked_url(config_required(config, "url"))
    return send_request(
        fmt.webhook_request(msg, url=url, headers=headers, timeout=config_timeout(config))
    )
