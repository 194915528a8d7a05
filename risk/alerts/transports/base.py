"""What every transport shares: the error a channel's failure raises, and the readers of
a channel's config that turn a bad value into that error."""

from __future__ import annotations

from risk.engine import alert_formats as fmt


class DeliveryError(Exception):
    """A channel refused or could not be reached; the message is stored in last_error."""


def config_timeout(config: dict) -> float:
    raw = config.get("timeout", fmt.DEFAULT_TIMEOUT_SECONDS)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0:
        raise DeliveryError(f"config timeout must be a positive number of seconds, got {raw!r}")
    return float(raw)


def config_required(config: dict, *keys: str) -> str:
    for key in keys:
        value = config.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise DeliveryError(f"channel config needs {' or '.join(keys)}")
