"""The schedules are declared in code and synced idempotently: ours created, drifted ones
updated, stale ones removed, foreign ones left alone."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from operations.schedules import UPDATE_SCHEDULE, schedules_sync

pytestmark = pytest.mark.django_db


def rows() -> dict[str, tuple]:
    return {s.name: (s.func, s.schedule_type, s.minutes, s.repeats) for s in Schedule.objects.all()}


def test_sync_creates_the_declared_schedules_once(settings):
    settings.QUANTSITE_UPDATE_EVERY_MINUTES = 5
    first = schedules_sync()
    assert sorted(first.created) == ["quantsite: deliver_alerts", "quantsite: run_update"]
    assert rows() == {
        "quantsite: run_update": ("operations.tasks.run_scheduled_update", "I", 5, -1),
        "quantsite: deliver_alerts": ("risk.tasks.deliver_alerts", "I", 1, -1),
    }
    again = schedules_sync()
    assert (again.created, again.updated, again.deleted) == ([], [], [])
    assert len(again.unchanged) == 2 and Schedule.objects.count() == 2


def test_sync_updates_drift_removes_our_stale_ones_and_leaves_foreign_ones(settings):
    schedules_sync()
    Schedule.objects.filter(name=UPDATE_SCHEDULE).update(minutes=60, repeats=3)
    Schedule.objects.create(name="quantsite: retired job", func="operations.tasks.gone")
    Schedule.objects.create(name="nightly backup", func="backup.run", minutes=1440)
    settings.QUANTSITE_UPDATE_EVERY_MINUTES = 2
    result = schedules_sync()
    assert (result.updated, result.deleted) == ([UPDATE_SCHEDULE], ["quantsite: retired job"])
    assert rows()[UPDATE_SCHEDULE] == ("operations.tasks.run_scheduled_update", "I", 2, -1)
    assert rows()["nightly backup"][0] == "backup.run"
    assert "quantsite: retired job" not in rows()


def test_the_command_reports_what_it_did():
    out = StringIO()
    call_command("sync_schedules", stdout=out)
    assert "created: quantsite: run_update" in out.getvalue()
    out = StringIO()
    call_command("sync_schedules", stdout=out)
    assert "created" not in out.getvalue() and "unchanged: quantsite: run_update" in out.getvalue()
