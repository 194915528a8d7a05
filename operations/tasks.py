"""django-q2 tasks (thin edges: each calls one service)."""

from __future__ import annotations

from operations.update import run_update


def run_scheduled_update(trigger: str = "schedule", run_id: int | None = None) -> str:
    """The scheduled update; Update now enqueues the same task with the id of the run row
    it queued (``operations.runs.update_enqueue``)."""
    result = run_update(trigger=trigger, run_id=run_id)
    return f"{result.status}: {result.message}"
