"""Typed getters for parsed YAML that raise ``ConfigError`` naming ``<file>: <key path>``.

Shared by every config parser (strategy allocation, risk limits) so a typo'd key, a wrong
type or an out-of-range value reads the same wherever it happens.
"""

from __future__ import annotations

import math
from typing import Any

from portfolio.engine.errors import ConfigError


class ConfigChecker:
    """Typed getters that raise ConfigError naming ``<file>: <path>``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, rule: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}", rule)

    def mapping(self, value: Any, path: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    f"{path}.{key}" if path else str(key),
                    f"unknown key; allowed keys: {', '.join(sorted(allowed))}",
                )
        return value

    def number(
        self,
        d: dict,
        key: str,
        path: str,
        *,
        default=None,
        minimum=None,
        exclusive_min=False,
        maximum=None,
        exclusive_max=False,
    ) -> float:
        where = f"{path}.{key}" if path else key
        value = d.get(key, default)
        if value is None:
            raise self.fail(where, "is required")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise self.fail(where, f"must be finite, got {value!r}")
        if minimum is not None and (value <= minimum if exclusive_min else value < minimum):
            raise self.fail(
                where, f"must be {'>' if exclusive_min else '>='} {minimum}, got {value:g}"
            )
        if maximum is not None and (value >= maximum if exclusive_max else value > maximum):
            raise self.fail(
                where, f"must be {'<' if exclusive_max else '<='} {maximum}, got {value:g}"
            )
        return value

    def integer(
        self, d: dict, key: str, path: str, *, default=None, minimum=None, maximum=None
    ) -> int:
        where = f"{path}.{key}" if path else key
        value = d.get(key, default)
        if value is None:
            raise self.fail(where, "is required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(where, f"must be <= {maximum}, got {value}")
        return value

    def choice(self, d: dict, key: str, path: str, choices, default=None) -> str:
        where = f"{path}.{key}" if path else key
        value = d.get(key, default)
        if value not in choices:
            raise self.fail(where, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def boolean(self, d: dict, key: str, path: str, default: bool) -> bool:
        value = d.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{path}.{key}", f"must be true or false, got {value!r}")
        return value

    def text(self, d: dict, key: str, path: str) -> str:
        value = d.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{path}.{key}", "is required and must be a non-empty string")
        return value.strip()
