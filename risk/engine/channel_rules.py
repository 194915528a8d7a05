"""Checks of an alert channel's config, shared by the risk YAML, the admin and any writer.

``channel_config_problem(kind, config, enabled=...)`` returns ``(key, rule)`` for the first
problem, or None. Rules:

- every URL (``url``, ``webhook_url``, ``api_base``) is ``http`` or ``https`` with a host
  and no whitespace: ``file:///etc/passwd``, ``gopher://`` or ``ftp://`` would let an alert
  read or reach what it must not;
- an enabled channel has what it needs to send: a webhook its ``url``, Slack and Discord a
  ``webhook_url``, email at least one recipient, SMS (Twilio) ``twilio_sid``,
  ``twilio_token``, ``phone_number`` and ``from_number``, PagerDuty a ``routing_key``
  (a disabled channel may be a
  template still being filled in; the admin checks again when it is enabled);
- recipients are ``name@domain`` addresses, ``smtp_server`` is ``host[:port]``, webhook
  ``headers`` a mapping of text to text without line breaks (no header injection),
  ``timeout`` a number of seconds in (0, 300].
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

_REQUIRED = {
    "webhook": (("url",),),
    "slack": (("webhook_url", "url"),),
    "discord": (("webhook_url", "url"),),
    "sms": (
        ("twilio_sid", "account_sid"),
        ("twilio_token", "auth_token"),
        ("phone_number", "to"),
        ("from_number",),
    ),
    "pagerduty": (("routing_key",),),
}
_URL_KEYS = ("url", "webhook_url", "api_base")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")
MAX_TIMEOUT_SECONDS = 300


def url_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be an http(s) URL"
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        return "must be an http(s) URL without spaces or control characters"
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"must be an http(s) URL, got scheme {parts.scheme or 'none'!r}"
    if not parts.hostname:
        return "must be an http(s) URL with a host"
    return None


def channel_config_problem(
    kind: str, config: Any, *, enabled: bool = True
) -> tuple[str, str] | None:
    """``(key, rule)`` for the first problem of ``config`` (see the module docstring)."""
    if not isinstance(config, dict):
        return "config", f"must be a mapping, got {type(config).__name__}"
    for key in _URL_KEYS:
        if key in config and (problem := url_problem(config[key])):
            return key, problem
    if enabled:
        for keys in _REQUIRED.get(kind, ()):
            if not any(isinstance(config.get(k), str) and config[k].strip() for k in keys):
                return keys[0], f"is required for an enabled {kind} channel"
    return _email_problem(kind, config, enabled) or _common_problem(config)


def _email_problem(kind: str, config: dict, enabled: bool) -> tuple[str, str] | None:
    if kind != "email":
        return None
    recipients = config.get("recipients", [])
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list):
        return "recipients", "must be a list of email addresses"
    for r in recipients:
        if not isinstance(r, str) or not _EMAIL.match(r):
            return "recipients", f"{r!r} is not an email address"
    if enabled and not recipients:
        return "recipients", "is required for an enabled email channel"
    server = config.get("smtp_server")
    if server not in (None, "") and (not isinstance(server, str) or not _HOST.match(server)):
        return "smtp_server", f"must be host or host:port, got {server!r}"
    return None


def _common_problem(config: dict) -> tuple[str, str] | None:
    headers = config.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            return "headers", "must be a mapping of header name to text"
        for name, value in headers.items():
            text = f"{name}{value}" if isinstance(value, str) else None
            if not isinstance(name, str) or text is None or "\r" in text or "\n" in text:
                return "headers", f"header {str(name)[:40]!r} must be text without line breaks"
    if "timeout" in config:
        t = config["timeout"]
        ok = isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
        if not ok or not 0 < t <= MAX_TIMEOUT_SECONDS:
            return "timeout", f"must be a number of seconds in (0, {MAX_TIMEOUT_SECONDS}]"
    return None
