"""SMS: a text message through a provider (``SMS_PROVIDERS``; Twilio today)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from risk.alerts.transports.base import DeliveryError, config_required, config_timeout
from risk.alerts.transports.twilio import TwilioSms
from risk.engine import alert_formats as fmt
from risk.models import AlertDelivery


class SmsProvider(Protocol):
    """Sends one text message; returns the provider's message id or raises DeliveryError."""

    def send(self, *, to: str, body: str) -> str: ...


SMS_PROVIDERS: dict[str, Callable[..., SmsProvider]] = {"twilio": TwilioSms}


def send_sms(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    name = config.get("provider", "twilio")
    if name not in SMS_PROVIDERS:
        raise DeliveryError(f"unknown SMS provider {name!r}; known: {', '.join(SMS_PROVIDERS)}")
    provider = SMS_PROVIDERS[name](config, timeout=config_timeout(config))
    to = config_required(config, "phone_number", "to")
    return lambda: provider.send(to=to, body=fmt.sms_text(msg))
