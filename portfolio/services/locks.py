"""Single-runner lock: one row per lock name; inserting it is acquiring it.

Works the same on SQLite and PostgreSQL (a unique constraint, no advisory locks). A lock
left by a process that died (same host, pid gone) or whose heartbeat is older than
``stale_after()`` (``QUANTSITE_RUN_STALE_SECONDS``, the same window the run reaper uses)
is taken over, so a killed update never blocks the next one.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from portfolio.models import RunLock

log = logging.getLogger(__name__)


def stale_after() -> timedelta:
    return timedelta(seconds=settings.QUANTSITE_RUN_STALE_SECONDS)


class AlreadyRunning(RuntimeError):
    """Another process holds the lock."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(lock: RunLock) -> bool:
    if lock.host == socket.gethostname() and not pid_alive(lock.pid):
        return True
    return timezone.now() - lock.heartbeat_at > stale_after()


@contextmanager
def lock_hold(name: str, *, owner: str = "") -> Iterator[RunLock]:
    """Hold lock ``name`` for the block, or raise ``AlreadyRunning``."""
    now = timezone.now()
    fields = {
        "owner": owner or f"pid {os.getpid()}",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "acquired_at": now,
        "heartbeat_at": now,
    }
    try:
        with transaction.atomic():
            lock = RunLock.objects.create(name=name, **fields)
    except IntegrityError:
        with transaction.atomic():
            current = RunLock.objects.filter(name=name).first()
            if current is not None and not _stale(current):
                raise AlreadyRunning(
                    f"already running: {current.owner} on {current.host} (pid {current.pid}) "
                    f"since {current.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
                ) from None
            # Take over a stale lock: the update only matches the row we saw.
            taken = RunLock.objects.filter(
                name=name, heartbeat_at=current.heartbeat_at if current else now
            ).update(**fields)
            if current is None or not taken:
                raise AlreadyRunning(f"already running: lock {name!r} changed hands") from None
            lock = RunLock.objects.get(name=name)
    try:
        yield lock
    finally:
        db_retry_once(RunLock.objects.filter(pk=lock.pk, pid=lock.pid, host=lock.host).delete)


def db_retry_once(write: Callable[[], object]) -> None:
    """Run ``write``; if the database connection was lost (a PostgreSQL restart, a killed
    backend), run it once more on a new connection. For the bookkeeping that must land
    after the failure it records (a run marked failed, a lock released): the first attempt
    often fails on the same broken connection that failed the update. The connection is
    only closed outside a transaction (one closed inside stays unusable until its
    rollback); inside one the retry runs on the same connection."""
    try:
        write()
    except (OperationalError, InterfaceError):
        log.warning("database connection lost; retrying on a new connection", exc_info=True)
        if not connection.in_atomic_block:
            connection.close()
        write()


def lock_heartbeat(lock: RunLock) -> None:
    RunLock.objects.filter(pk=lock.pk).update(heartbeat_at=timezone.now())
