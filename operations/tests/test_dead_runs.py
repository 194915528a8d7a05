"""A dead update never blocks the next one for long and is never left "running":

* on this host a dead pid frees its lock at once and its run is failed at once;
* on another host the pid cannot be checked: its run and its lock are dead once their
  heartbeat is older than ``QUANTSITE_RUN_STALE_SECONDS`` (180 s by default, beaten
  every ``QUANTSITE_RUN_HEARTBEAT_SECONDS``), and not before;
* a lost database connection fails the run with its reason (the bookkeeping is retried
  on a new connection), releases the lock, and the next run resumes exactly.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date, timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from operations import update as update_service
from operations.digest import tables_diff, tables_digest
from operations.tests.replay_setup import replay_configure, replay_tables
from operations.update import portfolio_apply, run_update
from portfolio import selectors
from portfolio.models import RunLock, UpdateRun
from portfolio.services.runs import runs_reap

pytestmark = pytest.mark.django_db
END = date(1990, 12, 31)
ELSEWHERE = "another-host"


def _stale(settings):
    return timezone.now() - timedelta(seconds=settings.QUANTSITE_RUN_STALE_SECONDS + 1)


def _lock(**fields) -> RunLock:
    now = timezone.now()
    values = {"owner": "dead run", "acquired_at": now, "heartbeat_at": now, **fields}
    return RunLock.objects.create(name=update_service.UPDATE_LOCK, **values)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_on_another_host_is_failed_from_its_stale_heartbeat_alone(settings):
    # its pid is alive here (ours), which says nothing about a process on another host
    silent = UpdateRun.objects.create(
        status="running", pid=os.getpid(), host=ELSEWHERE, heartbeat_at=_stale(settings)
    )
    beating = UpdateRun.objects.create(
        status="running", pid=_dead_pid(), host=ELSEWHERE, heartbeat_at=timezone.now()
    )
    assert runs_reap() == [silent.pk]
    silent.refresh_from_db()
    assert silent.status == "failed" and silent.error.startswith("worker died: stale heartbeat")
    assert UpdateRun.objects.get(pk=beating.pk).status == "running"


def test_a_lock_held_on_another_host_is_taken_over_once_its_heartbeat_is_stale(settings):
    replay_configure("static")
    lock = _lock(pid=os.getpid(), host=ELSEWHERE)
    dead = UpdateRun.objects.create(
        status="running", pid=os.getpid(), host=ELSEWHERE, heartbeat_at=lock.heartbeat_at
    )
    blocked = run_update(as_of=date(1990, 1, 31), load_prices=False)
    assert blocked.status == "skipped" and f"on {ELSEWHERE}" in blocked.message

    stale = _stale(settings)  # the other host stopped beating one window ago
    RunLock.objects.filter(pk=lock.pk).update(heartbeat_at=stale)
    UpdateRun.objects.filter(pk=dead.pk).update(heartbeat_at=stale)
    assert run_update(as_of=date(1990, 1, 31), load_prices=False).status == "success"
    dead.refresh_from_db()
    assert dead.status == "failed" and "stale heartbeat" in dead.error
    assert not RunLock.objects.exists()


def test_a_lock_left_by_a_dead_pid_on_this_host_is_taken_over_at_once():
    replay_configure("static")
    pid = _dead_pid()
    _lock(pid=pid, host=socket.gethostname())  # heartbeat just now: only the pid says dead
    dead = UpdateRun.objects.create(
        status="running", pid=pid, host=socket.gethostname(), heartbeat_at=timezone.now()
    )
    assert run_update(as_of=date(1990, 1, 31), load_prices=False).status == "success"
    dead.refresh_from_db()
    assert (dead.status, dead.error) == ("failed", f"worker died: process {pid} is gone")


def test_a_lost_database_connection_fails_the_run_and_the_next_run_resumes_exactly(
    settings, monkeypatch
):
    settings.QUANTSITE_DATES_PER_COMMIT = 40
    closes = selectors.price_frame(end=END)
    expected = replay_tables(
        "static", lambda p: portfolio_apply(portfolio=p, closes=closes, as_of=END), end=END
    )
    real_chunk, real_save = update_service.chunk_save, UpdateRun.save
    lost = {"chunks": 0, "down": False}

    def chunk_save(*args, **kwargs):
        lost["chunks"] += 1
        if lost["chunks"] == 3:
            lost["down"] = True
            raise OperationalError("server closed the connection unexpectedly")
        return real_chunk(*args, **kwargs)

    def run_save(self, *args, **kwargs):
        if lost["down"]:  # the first write after the loss fails on the same connection
            lost["down"] = False
            raise OperationalError("server closed the connection unexpectedly")
        return real_save(self, *args, **kwargs)

    def killed_then_resumed(portfolio):
        monkeypatch.setattr(update_service, "chunk_save", chunk_save)
        monkeypatch.setattr(UpdateRun, "save", run_save)
        with pytest.raises(OperationalError):
            run_update(as_of=END, load_prices=False)
        monkeypatch.undo()
        failed = UpdateRun.objects.get()
        assert failed.status == "failed" and failed.finished_at is not None
        assert failed.error == "OperationalError: server closed the connection unexpectedly"
        assert not RunLock.objects.exists()
        portfolio.refresh_from_db()
        assert portfolio.last_applied_date is not None and portfolio.last_applied_date < END
        assert run_update(as_of=END, load_prices=False).status == "success"

    resumed = replay_tables("static", killed_then_resumed, end=END)
    assert tables_digest(resumed) == tables_digest(expected), tables_diff(expected, resumed)
