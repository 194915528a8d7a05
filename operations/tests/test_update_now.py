"""Update now (``POST /api/update/``) and the run history (``/api/runs/``): staff only,
CSRF-checked, 202 with the queued run, 409 while one is in flight, the task picks the
queued row up, and in the demo's replay mode a run releases the next held-back bar."""

from __future__ import annotations

import os
import socket
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from operations import runs as runs_service
from operations.config import portfolio_configure
from operations.tasks import run_scheduled_update
from operations.update import run_update
from portfolio.models import Instrument, Portfolio, PriceBar, UpdateRun
from portfolio.services.config import allocation_spec_read
from portfolio.services.locks import lock_hold

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "strategy_allocation.yaml"
pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The tasks Update now sends to django-q2, captured instead of queued."""
    calls = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, **kwargs: calls.append((func, kwargs))
    )
    return calls


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(user)
    return client


def post_update(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/api/update/")


def test_staff_gets_202_with_the_queued_run_and_one_task_is_sent(
    staff, sent, django_capture_on_commit_callbacks
):
    response = post_update(staff, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    body = response.json()
    run = UpdateRun.objects.get()
    assert body == {"run": run.pk, "status": "queued", "url": f"/api/runs/{run.pk}/"}
    assert (run.status, run.trigger) == ("queued", "manual") and run.heartbeat_at
    assert sent == [
        (
            "operations.tasks.run_scheduled_update",
            {"trigger": "manual", "run_id": run.pk, "task_name": f"update run {run.pk}"},
        )
    ]


def test_while_a_run_is_in_flight_it_answers_409_and_queues_nothing(
    staff, sent, django_capture_on_commit_callbacks
):
    first = post_update(staff, django_capture_on_commit_callbacks).json()["run"]
    response = post_update(staff, django_capture_on_commit_callbacks)
    assert response.status_code == 409
    assert response.json()["run"] == first and "already" in response.json()["detail"]
    UpdateRun.objects.filter(pk=first).update(status="running", pid=os.getpid())
    assert post_update(staff, django_capture_on_commit_callbacks).status_code == 409
    assert len(sent) == 1 and UpdateRun.objects.count() == 1


def test_a_request_arriving_while_another_decides_queues_nothing(sent):
    with lock_hold(runs_service.ENQUEUE_LOCK, owner="the other request"):
        result = runs_service.update_enqueue(wait_seconds=0.1)
    assert not result.queued and result.run is None
    assert not UpdateRun.objects.exists() and not sent


def test_plain_users_and_anonymous_callers_are_refused(client, logged_in, sent):
    assert logged_in.post("/api/update/").status_code == 403
    logged_in.logout()
    assert client.post("/api/update/").status_code in (401, 403)
    assert not UpdateRun.objects.exists() and not sent


def test_the_session_post_needs_the_csrf_token(django_user_model, sent):
    user = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post("/api/update/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    browser.get("/accounts/login/")  # sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    assert browser.post("/api/update/", HTTP_X_CSRFTOKEN=token).status_code == 202


def test_the_task_picks_up_the_queued_run(staff, sent, django_capture_on_commit_callbacks):
    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    run_update(as_of=date(1990, 1, 31), load_prices=False)
    run_id = post_update(staff, django_capture_on_commit_callbacks).json()["run"]
    UpdateRun.objects.filter(pk=run_id).update(as_of=date(1990, 2, 7))
    message = run_scheduled_update(**{k: v for k, v in sent[0][1].items() if k != "task_name"})
    assert message.startswith("success")
    run = UpdateRun.objects.get(pk=run_id)
    assert (run.status, run.trigger, run.dates_applied) == ("success", "manual", 5)
    assert (run.first_date, run.last_date) == (date(1990, 2, 1), date(1990, 2, 7))
    assert run.pid == os.getpid() and run.host == socket.gethostname() and run.finished_at
    assert UpdateRun.objects.filter(status="queued").count() == 0


def test_a_queued_run_finding_the_lock_taken_ends_skipped(
    staff, sent, django_capture_on_commit_callbacks
):
    run_id = post_update(staff, django_capture_on_commit_callbacks).json()["run"]
    with lock_hold("update", owner="a scheduled update"):
        assert run_scheduled_update(trigger="manual", run_id=run_id).startswith("skipped")
    run = UpdateRun.objects.get(pk=run_id)
    assert run.status == "skipped" and "a scheduled update" in run.error and run.finished_at


def test_in_replay_mode_update_now_releases_the_next_held_back_bar(
    staff, sent, settings, django_capture_on_commit_callbacks
):
    PriceBar.objects.filter(date__gt=date(1990, 1, 31)).delete()  # the held-back bars
    portfolio = portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    run_update(load_prices=False)
    settings.QUANTSITE_REPLAY_BARS_PER_UPDATE = 1
    for expected in (date(1990, 2, 1), date(1990, 2, 2)):
        run_id = post_update(staff, django_capture_on_commit_callbacks).json()["run"]
        run_scheduled_update(trigger="manual", run_id=run_id)
        run = UpdateRun.objects.get(pk=run_id)
        assert (run.status, run.dates_applied, run.last_date) == ("success", 1, expected)
        assert run.bars_loaded == Instrument.objects.count()
        portfolio.refresh_from_db()
        assert portfolio.last_applied_date == expected
    assert PriceBar.objects.latest("date").date == date(1990, 2, 2)


def test_runs_are_listed_newest_first_with_their_timings(logged_in, django_assert_num_queries):
    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    first = run_update(as_of=date(1990, 1, 31), load_prices=False).run_id
    second = run_update(as_of=date(1990, 2, 7), load_prices=False).run_id
    with django_assert_num_queries(4):  # session, user, count, page
        body = logged_in.get("/api/runs/").json()
    assert body["count"] == 2 and [r["id"] for r in body["results"]] == [second, first]
    row = logged_in.get(f"/api/runs/{second}/").json()
    assert row["portfolio"] == Portfolio.objects.get().pk
    assert (row["status"], row["trigger"], row["dates_applied"]) == ("success", "command", 5)
    assert (row["first_date"], row["last_date"]) == ("1990-02-01", "1990-02-07")
    assert set(row) == {
        "id", "portfolio", "trigger", "status", "as_of", "first_date", "last_date",
        "dates_applied", "bars_loaded", "started_at", "finished_at", "heartbeat_at",
        "seconds_prices", "seconds_engine", "seconds_write", "error",
    }  # fmt: skip
    assert row["seconds_engine"] > 0 and row["heartbeat_at"] and row["error"] == ""


def test_the_run_history_is_for_logged_in_users_only(client):
    assert client.get("/api/runs/").status_code in (401, 403)


def test_a_dead_queued_run_does_not_block_update_now(
    staff, sent, settings, django_capture_on_commit_callbacks
):
    stale = timezone.now() - timedelta(seconds=settings.QUANTSITE_RUN_STALE_SECONDS + 1)
    old = UpdateRun.objects.create(trigger="manual", status="queued", heartbeat_at=stale)
    response = post_update(staff, django_capture_on_commit_callbacks)
    assert response.status_code == 202 and response.json()["run"] != old.pk
    old.refresh_from_db()
    assert old.status == "failed" and old.error.startswith("worker died: stale heartbeat")


def test_the_reaper_fails_dead_and_stale_runs_and_leaves_live_ones(settings):
    from portfolio.services.runs import runs_reap

    now, host = timezone.now(), socket.gethostname()
    stale = now - timedelta(seconds=settings.QUANTSITE_RUN_STALE_SECONDS + 5)
    dead = UpdateRun.objects.create(status="running", pid=2**22 + 7, host=host, heartbeat_at=now)
    hung = UpdateRun.objects.create(
        status="running", pid=os.getpid(), host=host, heartbeat_at=stale
    )
    alive = UpdateRun.objects.create(status="running", pid=os.getpid(), host=host, heartbeat_at=now)
    elsewhere = UpdateRun.objects.create(
        status="running", pid=2**22 + 7, host="another-host", heartbeat_at=now
    )
    assert sorted(runs_reap()) == sorted([dead.pk, hung.pk])
    states = dict(UpdateRun.objects.values_list("pk", "status"))
    assert states == {
        dead.pk: "failed",
        hung.pk: "failed",
        alive.pk: "running",
        elsewhere.pk: "running",
    }
    hung.refresh_from_db()
    assert hung.error.startswith("worker died: stale heartbeat (last ") and hung.finished_at
