"""Readiness: is this site able to serve and keep the book current?

Each check answers "ok" or a short fixed failure word, never exception text, hosts,
versions or paths (/readyz is anonymous). ``reason`` names the first failing check.

* database: a trivial query answers;
* migrations: no migration left unapplied;
* worker: a django-q2 cluster's heartbeat (its Stat, refreshed every guard cycle and kept
  in Redis or the shared ``qstat`` file cache) younger than QUANTSITE_READY_WORKER_SECONDS;
* last_update: an update finished (success or skipped) within
  QUANTSITE_READY_UPDATE_MAX_AGE_SECONDS, relative to the update schedule;
* redis (only with ``REDIS_URL``): the broker and channel layer answer a PING. Without
  it no task reaches a worker, so the site is not ready.

``warnings`` are reported but do not make the site unready: ``prices`` is "stale" when
the newest bar is older than QUANTSITE_STALE_DATA_DAYS (``price_staleness_get``). A
stale feed is a data problem, not a serving one: every web node sees the same database,
so a 503 would take the whole dashboard out of a load balancer, hiding the very pages
that show the warning, while the book itself is intact and current to its last bar.

The run reaper runs first, so a dead run is failed before anyone asks about it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from portfolio.models import UpdateRun
from portfolio.selectors import price_staleness_get
from portfolio.services.runs import runs_reap

log = logging.getLogger(__name__)

REASONS = {
    "database": "database unreachable",
    "migrations": "unapplied migrations",
    "worker": "no worker heartbeat",
    "last_update": "last update too old",
    "redis": "redis unreachable",
}


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str
    checks: dict[str, str]
    warnings: dict[str, str] = field(default_factory=dict)


def readiness_check() -> Readiness:
    checks = {"database": _database()}
    if checks["database"] == "ok":
        checks["migrations"] = _migrations()
        checks["worker"] = _worker()
        checks["last_update"] = _last_update()
    else:
        checks.update(migrations="unknown", worker="unknown", last_update="unknown")
    if settings.REDIS_URL:
        checks["redis"] = _redis()
    warnings = {}
    if checks["database"] == "ok" and checks["migrations"] == "ok":
        warnings = _warnings()
    failed = [name for name, value in checks.items() if value != "ok"]
    # "unknown" (not checked, or the check itself failed) only explains a verdict when
    # nothing more specific does.
    known = [name for name in failed if checks[name] != "unknown"] or failed
    reason = "; ".join(REASONS[name] for name in known)
    return Readiness(not failed, reason, checks, warnings)


def _redis() -> str:
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        client.ping()
    except Exception:
        log.exception("readiness: redis check failed")
        return "unreachable"
    return "ok"


def _warnings() -> dict[str, str]:
    try:
        stale = price_staleness_get().stale
    except Exception:
        log.exception("readiness: price staleness check failed")
        return {}
    return {"prices": "stale"} if stale else {}


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
