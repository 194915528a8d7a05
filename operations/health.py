"""Readiness: is this site able to serve and keep the book current?

Each check answers "ok" or a short fixed failure word, never exception text, hosts,
versions or paths (/readyz is anonymous). ``reason`` names the first failing check.

* database: a trivial query answers;
* migrations: no migration left unapplied;
* worker: a django-q2 cluster's heartbeat (its Stat, refreshed every guard cycle and kept
  in Redis or the shared ``qstat`` file cache) younger than QUANTSITE_READY_WORKER_SECONDS;
* last_update: an update finished (success or skipped) within
  QUANTSITE_READY_UPDATE_MAX_AGE_SECONDS, relative to the update schedule.

The run reaper runs first, so a dead run is failed before anyone asks about it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from portfolio.models import UpdateRun
from portfolio.services.runs import runs_reap

log = logging.getLogger(__name__)

REASONS = {
    "database": "database unreachable",
    "migrations": "unapplied migrations",
    "worker": "no worker heartbeat",
    "last_update": "last update too old",
}


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str
    checks: dict[str, str]


def readiness_check() -> Readiness:
    checks = {"database": _database()}
    if checks["database"] == "ok":
        checks["migrations"] = _migrations()
        checks["worker"] = _worker()
        checks["last_update"] = _last_update()
    else:
        checks.update(migrations="unknown", worker="unknown", last_update="unknown")
    failed = [name for name, value in checks.items() if value != "ok"]
    # "unknown" (not checked, or the check itself failed) only explains a verdict when
    # nothing more specific does.
    known = [name for name in failed if checks[name] != "unknown"] or failed
    reason = "; ".join(REASONS[name] for name in known)
    return Readiness(not failed, reason, checks)


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        log.exception("readiness: database check failed")
        return "unreachable"
    return "ok"


def _migrations() -> str:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        log.exception("readiness: migration check failed")
        return "unknown"
    return "pending" if plan else "ok"


def _worker() -> str:
    from django_q.conf import Conf
    from django_q.status import Stat

    try:
        stats = Stat.get_all()
    except Exception:
        log.exception("readiness: worker check failed")
        return "unknown"
    fresh = timezone.now() - timedelta(seconds=settings.QUANTSITE_READY_WORKER_SECONDS)
    alive = [s for s in stats if s.status in (Conf.IDLE, Conf.WORKING) and s.timestamp >= fresh]
    return "ok" if alive else "stale"


def _last_update() -> str:
    try:
        runs_reap()
    except Exception:  # a read-only replica or a locked database: still answer
        log.exception("readiness: run reaper failed")
    last = (
        UpdateRun.objects.filter(status__in=[UpdateRun.Status.SUCCESS, UpdateRun.Status.SKIPPED])
        .exclude(finished_at=None)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    if last is None:
        return "none"
    age = timezone.now() - last
    return (
        "ok"
        if age <= timedelta(seconds=settings.QUANTSITE_READY_UPDATE_MAX_AGE_SECONDS)
        else "stale"
    )
