"""Twilio Programmable Messaging, the SMS provider the ``sms`` transport uses by default."""

from __future__ import annotations

from risk.alerts.transports.base import DeliveryError, config_required
from risk.alerts.transports.web import checked_url, excerpt, http_send
from risk.engine import alert_formats as fmt


class TwilioSms:
    """Twilio Programmable Messaging; ``api_base`` points tests at a local server."""

    def __init__(self, config: dict, *, timeout: float):
        self.sid = config_required(config, "twilio_sid", "account_sid")
        self.token = config_required(config, "twilio_token", "auth_token")
        self.from_number = config_required(config, "from_number")
        self.api_base = checked_url(config.get("api_base") or fmt.TWILIO_API_BASE)
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
            raise DeliveryError(f"{exc}: {excerpt(content)}") from None
