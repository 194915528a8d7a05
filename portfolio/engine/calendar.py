"""Trading-day rules that need only the bar dates already seen (never tomorrow's calendar).

A strategy trading ``monthly`` fills on the first bar of each month: the first bar whose
month differs from the previous bar's. ``weekly`` uses the ISO week, ``quarterly`` the
calendar quarter, ``daily`` every bar. The very first bar of a history has no previous
bar, so it is never a periodic trading day.
"""

from __future__ import annotations

from datetime import date

FREQUENCIES = ("daily", "weekly", "monthly", "quarterly")


def is_period_start(frequency: str, day: date, prev_day: date | None) -> bool:
    """True when ``day`` is the first bar of a new period relative to ``prev_day``."""
    if prev_day is None:
        return False
    if frequency == "daily":
        return True
    if frequency == "weekly":
        return day.isocalendar()[:2] != prev_day.isocalendar()[:2]
    if frequency == "monthly":
        return (day.year, day.month) != (prev_day.year, prev_day.month)
    if frequency == "quarterly":
        return (day.year, (day.month - 1) // 3) != (prev_day.year, (prev_day.month - 1) // 3)
    raise ValueError(f"unknown frequency {frequency!r}; expected one of {', '.join(FREQUENCIES)}")


def period_key(frequency: str, day: date) -> tuple:
    """The period ``day`` falls in: equal keys mean the same week/month/quarter."""
    if frequency == "daily":
        return (day,)
    if frequency == "weekly":
        return tuple(day.isocalendar()[:2])
    if frequency == "monthly":
        return (day.year, day.month)
    if frequency == "quarterly":
        return (day.year, (day.month - 1) // 3)
    raise ValueError(f"unknown frequency {frequency!r}; expected one of {', '.join(FREQUENCIES)}")


def bar_numbers(days: list[date], frequency: str) -> list[int]:
    """For ascending bar dates, each bar's 1-based number within its period: the first bar
    of a month is 1, the next 2, ... (``daily``: always 1)."""
    out, prev, n = [], None, 0
    for d in days:
        key = period_key(frequency, d)
        n = n + 1 if key == prev else 1
        out.append(n)
        prev = key
    return out
