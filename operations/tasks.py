"""django-q2 tasks (thin edges: each calls one service)."""

from __future__ import annotations

from operations.update import run_update


def run_scheduled_update() -> str:
    result = run_update(trigger="schedule")
    return f"{result.status}: {result.message}"
