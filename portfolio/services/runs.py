"""Liveness of ``UpdateRun`` rows: the heartbeat a running update writes and the reaper
that marks a dead one failed, so no run is ever left "queued" or "running".

A run is dead when its process is gone (same host, pid no longer alive) or its heartbeat
is older than ``QUANTSITE_RUN_STALE_SECONDS``. A queued run's heartbeat is the time it
was queued: one no worker picked up within the window is dead too. The reaper runs at the
start of every update, before Update now decides "already in flight", and in /readyz.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from portfolio.models import RunLock, UpdateRun
from portfolio.services.locks import pid_alive, stale_after

log = logging.getLogger(__name__)


def _death(run: UpdateRun, now) -> str | None:
    """Why ``run`` is dead, or None while it may still be alive."""
    if run.status == UpdateRun.Status.RUNNING and run.pid and run.host == socket.gethostname():
        if not pid_alive(run.pid):
            return f"worker died: process {run.pid} is gone"
    beat = run.heartbeat_at or run.started_at
    if now - beat > stale_after():
        age = int((now - beat).total_seconds())
        if run.status == UpdateRun.Status.QUEUED:
            return f"worker died: stale heartbeat (queued {age} s ago, never picked up)"
        return f"worker died: stale heartbeat (last {age} s ago)"
    return None


def runs_reap() -> list[int]:
    """Mark every dead queued/running run failed; return their ids. The status filter in
    the update makes two concurrent reapers (or a run finishing meanwhile) harmless."""
    now = timezone.now()
    reaped = []
    for run in UpdateRun.objects.filter(status__in=UpdateRun.IN_FLIGHT):
        reason = _death(run, now)
        if reason is None:
            continue
        done = UpdateRun.objects.filter(pk=run.pk, status=run.status).update(
            status=UpdateRun.Status.FAILED, error=reason, finished_at=now
        )
        if done:
            log.warning("run %s marked failed: %s", run.pk, reason)
            reaped.append(run.pk)
    return reaped


def run_in_flight() -> UpdateRun | None:
    """The oldest queued or running run, if any."""
    return UpdateRun.objects.filter(status__in=UpdateRun.IN_FLIGHT).order_by("id").first()


def run_beat(run: UpdateRun, lock: RunLock | None = None) -> None:
    """One heartbeat: the run's and its lock's."""
    now = timezone.now()
    UpdateRun.objects.filter(pk=run.pk).update(heartbeat_at=now)
    if lock is not None:
        RunLock.objects.filter(pk=lock.pk, pid=lock.pid).update(heartbeat_at=now)


def run_claim(run: UpdateRun) -> None:
    """Mark ``run`` running in this process (pid, host, heartbeat now)."""
    run.status = UpdateRun.Status.RUNNING
    run.pid, run.host = os.getpid(), socket.gethostname()
    run.heartbeat_at = timezone.now()
    if run.pk:
        run.save(update_fields=["status", "pid", "host", "heartbeat_at"])
    else:
        run.save()


@contextmanager
def run_heartbeat(run: UpdateRun, lock: RunLock | None = None) -> Iterator[None]:
    """Beat every ``QUANTSITE_RUN_HEARTBEAT_SECONDS`` from a thread for the block, so a
    long chunk (or a slow price download) does not look dead. 0 disables the thread (the
    update still beats between chunks)."""
    every = settings.QUANTSITE_RUN_HEARTBEAT_SECONDS
    if not every:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                try:
                    run_beat(run, lock)
                except Exception:  # a busy database must not kill the update
                    log.warning("heartbeat of run %s failed", run.pk, exc_info=True)
                    close_old_connections()
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"run-{run.pk}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)
