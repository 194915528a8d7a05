"""Typed readers for settings taken from environment variables.

Every reader fails loudly (``ImproperlyConfigured``, naming the variable and the rule) on a
malformed value instead of guessing, in the style of healthchecks' ``envbool``/``envint``.
"""

from __future__ import annotations

import math
import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be >= {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """A finite number; ``minimum`` is exclusive (the settings it serves must be > 0)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number") from None
    if not math.isfinite(value) or (minimum is not None and value <= minimum):
        raise ImproperlyConfigured(f"{name}={raw!r}: must be a finite number > {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate, ``<requests>/<period>``: a positive integer and one of
    second, minute, hour, day (DRF reads only the first letter: ``100/min``, ``5/s``)."""
    value = os.environ.get(name, default).strip()
    match = re.fullmatch(r"([0-9]+)/([smhd][a-z]*)", value)
    if match is None or int(match[1]) < 1:
        raise ImproperlyConfigured(
            f"{name}={value!r}: expected <requests>/<period>, requests >= 1 and period one of"
            " second, minute, hour, day (e.g. 100/minute)"
        )
    return f"{int(match[1])}/{match[2]}"
