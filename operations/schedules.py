"""Every django-q2 schedule Quantsite runs, declared here and only here.

``schedules_sync`` makes the database match ``schedules_declared()`` idempotently:
it creates ours that are missing, updates ours that drifted (function, interval,
repeats), deletes ours that are no longer declared (by the ``quantsite: `` name prefix),
and never touches a schedule someone else named. ``manage.py sync_schedules`` runs it;
``make run`` calls it, and so should every deployment after ``migrate``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from risk import alerts

PREFIX = "quantsite: "
UPDATE_SCHEDULE = PREFIX + "run_update"
UPDATE_TASK = "operations.tasks.run_scheduled_update"


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    minutes: int


@dataclass(frozen=True)
class SyncResult:
    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: list[str]


def schedules_declared() -> list[ScheduleSpec]:
    """The update every QUANTSITE_UPDATE_EVERY_MINUTES and the alert outbox flush."""
    assert alerts.SCHEDULE_NAME.startswith(PREFIX)
    return [
        ScheduleSpec(UPDATE_SCHEDULE, UPDATE_TASK, settings.QUANTSITE_UPDATE_EVERY_MINUTES),
        ScheduleSpec(alerts.SCHEDULE_NAME, alerts.TASK, 1),
    ]


def schedules_sync() -> SyncResult:
    from django_q.models import Schedule

    declared = {spec.name: spec for spec in schedules_declared()}
    created, updated, deleted, unchanged = [], [], [], []
    with transaction.atomic():
        existing = {s.name: s for s in Schedule.objects.filter(name__startswith=PREFIX)}
        for name, row in existing.items():
            if name not in declared:
                row.delete()
                deleted.append(name)
        for name, spec in declared.items():
            wanted = {
                "func": spec.func,
                "schedule_type": Schedule.MINUTES,
                "minutes": spec.minutes,
                "repeats": -1,
            }
            row = existing.get(name)
            if row is None:
                Schedule.objects.create(name=name, **wanted)
                created.append(name)
            elif any(getattr(row, k) != v for k, v in wanted.items()):
                Schedule.objects.filter(pk=row.pk).update(**wanted)
                updated.append(name)
            else:
                unchanged.append(name)
    return SyncResult(created, updated, deleted, unchanged)
