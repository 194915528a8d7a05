"""Shared argument parsing for the portfolio commands."""

from __future__ import annotations

from datetime import date

from django.core.management.base import CommandError


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} {value!r}: expected a date as YYYY-MM-DD") from None


def split_tickers(value: str | None) -> list[str]:
    """``--add-tickers AAA,BBB`` -> ["AAA", "BBB"] (checked by the service)."""
    return [t.strip() for t in (value or "").split(",") if t.strip()]
