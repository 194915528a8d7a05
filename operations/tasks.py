"""django-q2 tasks (thin edges: each calls one service)."""

from __future__ import annotations

import logging

from django.conf import settings

from operations.update import run_update

log = logging.getLogger(__name__)
SCENARIOS_TASK = "risk.tasks.run_scenarios"


def run_scheduled_update(trigger: str = "schedule", run_id: int | None = None) -> str:
    """The scheduled update; Update now enqueues the same task with the id of the run row
    it queued (``operations.runs.update_enqueue``). An update that applied bars queues the
    scenarios on the new state (``risk.tasks.run_scenarios``) when
    ``QUANTSITE_SCENARIOS_AFTER_UPDATE`` is on: a separate task, so the next update is
    never held up behind them."""
    result = run_update(trigger=trigger, run_id=run_id)
    if result.dates_applied and settings.QUANTSITE_SCENARIOS_AFTER_UPDATE:
        scenarios_enqueue()
    return f"{result.status}: {result.message}"


def scenarios_enqueue() -> None:
    from django_q.tasks import async_task

    try:
        async_task(SCENARIOS_TASK, task_name="scenarios after update")
    except Exception:  # a broker outage must not fail the committed update
        log.exception("could not queue %s", SCENARIOS_TASK)
