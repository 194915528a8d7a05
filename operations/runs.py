"""Update now: queue one update run for the workers, unless one is already in flight.

The decision "nothing in flight, so queue one" is made while holding the short
``update-enqueue`` lock (``portfolio.services.locks``: a unique row insert, the same on
SQLite and PostgreSQL), so two concurrent requests can never both queue a run. The run
row is created "queued" first; the task (``operations.tasks.run_scheduled_update``, the
one the schedule runs) is sent after commit and picks that row up by id.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from portfolio.models import UpdateRun
from portfolio.services.locks import AlreadyRunning, lock_hold
from portfolio.services.runs import run_in_flight, runs_reap

log = logging.getLogger(__name__)
TASK = "operations.tasks.run_scheduled_update"
ENQUEUE_LOCK = "update-enqueue"


@dataclass(frozen=True)
class Enqueued:
    run: UpdateRun | None  # the queued run, or the one in flight
    queued: bool  # False: one was already in flight, nothing was queued


def update_enqueue(*, trigger: str = "manual", wait_seconds: float = 5.0) -> Enqueued:
    """Queue an update run, or return the run already queued or running."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with lock_hold(ENQUEUE_LOCK, owner=f"update_enqueue ({trigger})"):
                return _enqueue_locked(trigger)
        except AlreadyRunning:
            # Another request is deciding right now (milliseconds): wait for its verdict.
            if time.monotonic() > deadline:
                return Enqueued(run_in_flight(), False)
            time.sleep(0.02)


def _enqueue_locked(trigger: str) -> Enqueued:
    runs_reap()
    current = run_in_flight()
    if current is not None:
        return Enqueued(current, False)
    with transaction.atomic():
        run = UpdateRun.objects.create(
            trigger=trigger, status=UpdateRun.Status.QUEUED, heartbeat_at=timezone.now()
        )
        transaction.on_commit(lambda: _send(run.pk, trigger))
    return Enqueued(run, True)


def _send(run_id: int, trigger: str) -> None:
    from django_q.tasks import async_task

    try:
        async_task(TASK, trigger=trigger, run_id=run_id, task_name=f"update run {run_id}")
    except Exception as exc:  # a broker outage: say so on the run, do not leave it queued
        log.exception("could not queue update run %s", run_id)
        UpdateRun.objects.filter(pk=run_id, status=UpdateRun.Status.QUEUED).update(
            status=UpdateRun.Status.FAILED,
            error=f"could not queue: {type(exc).__name__}",
            finished_at=timezone.now(),
        )
