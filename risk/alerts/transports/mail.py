"""Email: Django's mail backend (SMTP settings from the environment, an optional
per-channel server and timeout)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from risk.alerts.transports.base import DeliveryError, config_timeout
from risk.engine import alert_formats as fmt
from risk.models import AlertDelivery


def send_email(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    recipients = config.get("recipients") or []
    if isinstance(recipients, str):
        recipients = [recipients]
    if not recipients:
        raise DeliveryError("email channel has no recipients")
    options: dict = {"fail_silently": False}
    if "timeout" in config:
        options["timeout"] = config_timeout(config)
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
