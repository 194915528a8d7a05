"""Which parts of an alert channel's config are secrets, and how they are shown.

A secret is shown as ``MASK`` plus its last four characters (``"••••abcd"``; only the mask
when the value is shorter than ``SHOW_TAIL_MIN`` characters, so a short token is not half
shown). Secrets are every webhook URL (a Slack or Discord incoming-webhook URL is the
credential itself; a generic webhook's URL often carries one), the Twilio account sid and
auth token, a PagerDuty ``routing_key``, an SMTP password, and every value of a webhook's
``headers`` mapping (they usually carry an ``Authorization``).

``config_masked`` is what the admin form and the audit trail show; ``config_merge`` turns
a submitted config back into the one to store: a secret submitted exactly as it was shown
keeps the stored value, anything else is taken as typed. Pure: no Django.
"""

from __future__ import annotations

from typing import Any

MASK = "••••"
SHOW_TAIL_MIN = 12
SECRET_KEYS = frozenset(
    {
        "url",
        "webhook_url",
        "twilio_sid",
        "account_sid",
        "twilio_token",
        "auth_token",
        "smtp_password",
        "password",
        "routing_key",
    }
)
SECRET_MAPPINGS = frozenset({"headers"})  # every value inside is a secret


def secret_mask(value: Any) -> str:
    text = str(value)
    return MASK + text[-4:] if len(text) >= SHOW_TAIL_MIN else MASK


def is_masked(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(MASK)


def config_masked(config: Any) -> Any:
    """``config`` with every secret replaced by its mask (anything not a mapping as is)."""
    if not isinstance(config, dict):
        return config
    out = {}
    for key, value in config.items():
        if key in SECRET_KEYS and value not in (None, ""):
            out[key] = secret_mask(value)
        elif key in SECRET_MAPPINGS and isinstance(value, dict):
            out[key] = {k: secret_mask(v) for k, v in value.items()}
        else:
            out[key] = value
    return out


def config_merge(submitted: Any, stored: Any) -> tuple[Any, list[str]]:
    """(config to store, paths of masked values that match no stored secret). A masked
    value equal to the stored secret's mask keeps the stored secret; a masked value with
    no such secret behind it is an error the caller reports (never stored as the secret)."""
    if not isinstance(submitted, dict):
        return submitted, []
    stored = stored if isinstance(stored, dict) else {}
    out, unmatched = {}, []
    for key, value in submitted.items():
        if key in SECRET_KEYS and is_masked(value):
            if key in stored and secret_mask(stored[key]) == value:
                out[key] = stored[key]
            else:
                out[key] = value
                unmatched.append(key)
        elif key in SECRET_MAPPINGS and isinstance(value, dict):
            before = stored.get(key) if isinstance(stored.get(key), dict) else {}
            inner = {}
            for name, v in value.items():
                if is_masked(v):
                    if name in before and secret_mask(before[name]) == v:
                        inner[name] = before[name]
                    else:
                        inner[name] = v
                        unmatched.append(f"{key}.{name}")
                else:
                    inner[name] = v
            out[key] = inner
        else:
            out[key] = value
    return out, unmatched
