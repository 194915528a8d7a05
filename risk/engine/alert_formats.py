"""Alert messages and the HTTP requests that carry them (pure: no Django, no I/O, no clock).

An ``AlertMessage`` is the plain-data view of one violation (or of a channel test). The
functions here turn it into text (subject, body, SMS) and into ``HttpRequest`` values for
each channel kind; ``risk.alerts.transports`` sends them. Shapes:

- generic webhook: ``POST`` JSON ``{"event": "risk.violation", "violation_id", "portfolio",
  "limit", "severity", "scope", "strategy", "ticker", "value", "threshold", "action",
  "date", "status"}`` (``event`` is ``"risk.test"`` for a channel test), plus the
  channel's own headers;
- Slack incoming webhook: ``{"text": subject, "blocks": [header, section with 10 fields,
  context]}``;
- Discord webhook: ``{"content": subject, "embeds": [{"title", "description", "color",
  "fields": [{"name", "value", "inline"}]}]}``;
- Twilio: ``POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json``, form-encoded
  ``To``/``From``/``Body``, HTTP basic auth ``sid:token``; success is a 201 whose JSON
  carries a message ``sid``;
- PagerDuty Events API v2: ``POST {api_base}/v2/enqueue`` JSON ``{"routing_key",
  "event_action": "trigger", "dedup_key": "quantsite-violation-<id>", "payload":
  {"summary" (the subject, at most 1024 characters), "source": "quantsite/<portfolio>",
  "severity", "timestamp" (ISO 8601, when the violation was recorded), "custom_details"
  (the labelled fields, the violation id, the note)}}``; severities map critical ->
  critical, high -> error, medium -> warning, low (and a channel test) -> info. A
  recovery sends ``{"routing_key", "event_action": "resolve", "dedup_key"}`` with the same
  key, so PagerDuty closes the incident the trigger opened. Success is a 202 whose JSON
  ``status`` is ``"success"``.

Retry delays: ``backoff_seconds(n)`` after the n-th failed attempt is
``min(60 * 2**(n-1), 3600)`` seconds (1, 2, 4, 8, 16, 32 min, then 1 h), no jitter.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from risk.engine.severity import LOWEST_SEVERITY, severity_at_least

# Discord embed colours (decimal RGB): red, orange, amber, blue.
SEVERITY_COLOR = {"critical": 0xD32F2F, "high": 0xF57C00, "medium": 0xFBC02D, "low": 0x1976D2}
BACKOFF_BASE_SECONDS = 60
BACKOFF_CAP_SECONDS = 3600
DEFAULT_TIMEOUT_SECONDS = 5.0
TWILIO_API_BASE = "https://api.twilio.com"
SMS_MAX_CHARS = 1600  # Twilio's limit for one message body
SUBJECT_MAX_CHARS = 300  # AlertDelivery.subject
PAGERDUTY_API_BASE = "https://events.pagerduty.com"
PAGERDUTY_SUMMARY_MAX_CHARS = 1024
PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


@dataclass(frozen=True)
class AlertMessage:
    """What an alert says. ``limit`` is None for a channel test."""

    portfolio: str
    limit: str | None = None
    severity: str | None = None
    scope: str | None = None
    strategy: str | None = None
    ticker: str | None = None
    value: float | None = None
    threshold: float | None = None
    direction: str | None = None  # "max": breaches above, "min": breaches below
    action: str | None = None
    date: str | None = None  # ISO bar date
    status: str | None = None
    note: str = ""
    violation_id: int | None = None

    @property
    def is_test(self) -> bool:
        return self.limit is None


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout: float = DEFAULT_TIMEOUT_SECONDS


def severity_admits(min_severity: str, severity: str) -> bool:
    """True when a channel whose floor is ``min_severity`` takes a ``severity`` alert
    (``risk.engine.severity``: critical > high > medium > low)."""
    return severity_at_least(severity, min_severity)


def backoff_seconds(attempts: int) -> int:
    """Delay before the next try after ``attempts`` failed tries (attempts >= 1)."""
    exponent = min(max(attempts, 1) - 1, 16)  # 2**16 min is far past the cap already
    return min(BACKOFF_BASE_SECONDS * 2**exponent, BACKOFF_CAP_SECONDS)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _where(msg: AlertMessage) -> str:
    parts = [p for p in (msg.scope, msg.strategy, msg.ticker) if p]
    return "/".join(parts)


def alert_subject(msg: AlertMessage) -> str:
    if msg.is_test:
        return f"[TEST] Quantsite alert channel test ({msg.portfolio})"[:SUBJECT_MAX_CHARS]
    sev = (msg.severity or "").upper()
    text = (
        f"[{sev}] {msg.portfolio}: {msg.limit} breached at {_where(msg)}, "
        f"{_num(msg.value)} vs {_num(msg.threshold)} on {msg.date}"
    )
    return text[:SUBJECT_MAX_CHARS]


def _comparison(msg: AlertMessage) -> str:
    side = {"max": "above", "min": "below"}.get(msg.direction or "", "beyond")
    return f"{_num(msg.value)} ({side} the threshold {_num(msg.threshold)})"


def alert_fields(msg: AlertMessage) -> list[tuple[str, str]]:
    """The labelled lines every format shows, in order (10 of them: Slack's maximum)."""
    return [
        ("Portfolio", msg.portfolio),
        ("Limit", msg.limit or "-"),
        ("Severity", msg.severity or "-"),
        ("Scope", msg.scope or "-"),
        ("Strategy / ticker", " / ".join([msg.strategy or "-", msg.ticker or "-"])),
        ("Value", _comparison(msg)),
        ("Threshold", _num(msg.threshold)),
        ("Action taken", msg.action or "-"),
        ("Bar date", msg.date or "-"),
        ("Status", msg.status or "-"),
    ]


def alert_body(msg: AlertMessage) -> str:
    if msg.is_test:
        return (
            f"This is a test alert from Quantsite for portfolio {msg.portfolio}.\n"
            "If you can read it, the channel works.\n"
        )
    lines = [f"Risk limit breached: {msg.limit}", ""]
    lines += [f"{label}: {value}" for label, value in alert_fields(msg)]
    if msg.note:
        lines += ["", msg.note]
    return "\n".join(lines) + "\n"


def sms_text(msg: AlertMessage) -> str:
    return alert_subject(msg)[:SMS_MAX_CHARS]


def webhook_payload(msg: AlertMessage) -> dict:
    return {
        "event": "risk.test" if msg.is_test else "risk.violation",
        "violation_id": msg.violation_id,
        "portfolio": msg.portfolio,
        "limit": msg.limit,
        "severity": msg.severity,
        "scope": msg.scope,
        "strategy": msg.strategy,
        "ticker": msg.ticker,
        "value": msg.value,
        "threshold": msg.threshold,
        "action": msg.action,
        "date": msg.date,
        "status": msg.status,
    }


def slack_payload(msg: AlertMessage) -> dict:
    subject = alert_subject(msg)
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in alert_fields(msg)
    ]
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}},
        {"type": "section", "fields": fields},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Quantsite risk manager"}]},
    ]
    return {"text": subject, "blocks": blocks}


def _discord_description(msg: AlertMessage) -> str:
    if msg.is_test:
        return alert_body(msg)
    text = f"{msg.limit} at {_where(msg)}: {_comparison(msg)}; action: {msg.action}"
    return f"{text}\n{msg.note}" if msg.note else text


def discord_payload(msg: AlertMessage) -> dict:
    title = "Quantsite alert channel test" if msg.is_test else f"Risk limit breached: {msg.limit}"
    embed = {
        "title": title[:256],
        "description": _discord_description(msg)[:4096],
        "color": SEVERITY_COLOR.get(msg.severity or LOWEST_SEVERITY, SEVERITY_COLOR["low"]),
        "fields": [
            {"name": label, "value": value[:1024], "inline": True}
            for label, value in alert_fields(msg)
        ],
    }
    return {"content": alert_subject(msg)[:2000], "embeds": [embed]}


def _json_request(url: str, payload: dict, headers: dict | None, timeout: float) -> HttpRequest:
    merged = {"Content-Type": "application/json", "User-Agent": "Quantsite-Alerts/1"}
    merged.update({str(k): str(v) for k, v in (headers or {}).items()})
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return HttpRequest("POST", url, merged, body, timeout)


def webhook_request(
    msg: AlertMessage, *, url: str, headers: dict | None = None, timeout: float
) -> HttpRequest:
    return _json_request(url, webhook_payload(msg), headers, timeout)


def slack_request(msg: AlertMessage, *, url: str, timeout: float) -> HttpRequest:
    return _json_request(url, slack_payload(msg), None, timeout)


def discord_request(msg: AlertMessage, *, url: str, timeout: float) -> HttpRequest:
    return _json_request(url, discord_payload(msg), None, timeout)


def twilio_request(
    *,
    sid: str,
    token: str,
    to: str,
    from_: str,
    body: str,
    api_base: str = TWILIO_API_BASE,
    timeout: float,
) -> HttpRequest:
    """Twilio's Create Message call (REST API 2010-04-01)."""
    url = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{quote(sid, safe='')}/Messages.json"
    auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
    headers = {
        "Authorization": f"Basic {auth}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "User-Agent": "Quantsite-Alerts/1",
    }
    form = urlencode({"To": to, "From": from_, "Body": body[:SMS_MAX_CHARS]}).encode()
    return HttpRequest("POST", url, headers, form, timeout)


def twilio_message_sid(status: int, body: bytes) -> str:
    """The message sid of a successful Create Message response; ValueError otherwise."""
    if status != 201:
        raise ValueError(f"Twilio answered HTTP {status}, expected 201")
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("Twilio answered 201 without a JSON body") from None
    sid = data.get("sid") if isinstance(data, dict) else None
    if not isinstance(sid, str) or not sid:
        raise ValueError("Twilio answered 201 without a message sid")
    return sid


def pagerduty_dedup_key(violation_id: int) -> str:
    """One PagerDuty incident per violation: its trigger and its resolve share this key."""
    return f"quantsite-violation-{violation_id}"


def resolved_subject(msg: AlertMessage, *, resolved_on: str) -> str:
    """The outbox subject of a recovery (the channels that send one: PagerDuty)."""
    text = f"[RESOLVED] {msg.portfolio}: {msg.limit} at {_where(msg)} recovered on {resolved_on}"
    return text[:SUBJECT_MAX_CHARS]


def pagerduty_payload(
    msg: AlertMessage, *, routing_key: str, action: str, dedup_key: str, timestamp: str
) -> dict:
    """An Events API v2 event: ``action`` is ``"trigger"`` or ``"resolve"``."""
    if action == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    details = {label: value for label, value in alert_fields(msg)}
    details["Violation id"] = msg.violation_id
    if msg.note:
        details["Note"] = msg.note
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": alert_subject(msg)[:PAGERDUTY_SUMMARY_MAX_CHARS],
            "source": f"quantsite/{msg.portfolio}",
            "severity": PAGERDUTY_SEVERITY.get(msg.severity or LOWEST_SEVERITY, "info"),
            "timestamp": timestamp,
            "custom_details": details,
        },
    }


def pagerduty_request(
    msg: AlertMessage,
    *,
    routing_key: str,
    action: str,
    dedup_key: str,
    timestamp: str,
    api_base: str = PAGERDUTY_API_BASE,
    timeout: float,
) -> HttpRequest:
    url = f"{api_base.rstrip('/')}/v2/enqueue"
    payload = pagerduty_payload(
        msg, routing_key=routing_key, action=action, dedup_key=dedup_key, timestamp=timestamp
    )
    return _json_request(url, payload, {"Accept": "application/json"}, timeout)


def pagerduty_accepted(status: int, body: bytes) -> str:
    """The dedup key of an accepted event (HTTP 202, ``status`` ``"success"``);
    ValueError otherwise."""
    if status != 202:
        raise ValueError(f"PagerDuty answered HTTP {status}, expected 202")
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("PagerDuty answered 202 without a JSON body") from None
    if not isinstance(data, dict) or data.get("status") != "success":
        raise ValueError("PagerDuty answered 202 without status success")
    return str(data.get("dedup_key") or "")
