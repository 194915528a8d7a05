"""/healthz, /readyz and the JSON status endpoints: anonymous, fixed verdict words, no
leaks; /readyz fails on a missing worker heartbeat and on an old last update."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portfolio.models import UpdateRun

pytestmark = pytest.mark.django_db


class FakeStat:
    def __init__(self, status="Idle", age_seconds=0.0):
        self.status = status
        self.timestamp = timezone.now() - timedelta(seconds=age_seconds)


@pytest.fixture
def worker(monkeypatch):
    stats = [FakeStat()]
    monkeypatch.setattr("django_q.status.Stat.get_all", staticmethod(lambda broker=None: stats))
    return stats


def finished_run(age_seconds: float = 5, status: str = "success") -> UpdateRun:
    done = timezone.now() - timedelta(seconds=age_seconds)
    return UpdateRun.objects.create(status=status, finished_at=done, trigger="schedule")


def test_healthz_answers_ok_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def _redis_ok(settings) -> dict:
    """With REDIS_URL (the PostgreSQL + Redis leg) /readyz checks Redis too."""
    return {"redis": "ok"} if settings.REDIS_URL else {}


def test_readyz_is_ready_with_a_fresh_worker_and_a_recent_update(client, worker, settings):
    finished_run()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {
            "database": "ok",
            "migrations": "ok",
            "worker": "ok",
            "last_update": "ok",
            **_redis_ok(settings),
        },
    }


def test_readyz_says_503_when_no_worker_heartbeat_is_fresh(client, worker, settings):
    finished_run()
    worker[:] = [FakeStat(age_seconds=settings.QUANTSITE_READY_WORKER_SECONDS + 1)]
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body == {
        "status": "not ready",
        "reason": "no worker heartbeat",
        "checks": {
            "database": "ok",
            "migrations": "ok",
            "worker": "stale",
            "last_update": "ok",
            **_redis_ok(settings),
        },
    }
    worker[:] = [FakeStat(status="Stopping")]
    assert client.get("/readyz").json()["checks"]["worker"] == "stale"


def test_readyz_says_503_when_the_last_update_is_older_than_the_schedule_allows(
    client, worker, settings
):
    assert client.get("/readyz").json()["checks"]["last_update"] == "none"
    finished_run(age_seconds=settings.QUANTSITE_READY_UPDATE_MAX_AGE_SECONDS + 10)
    finished_run(age_seconds=1, status="failed")  # a failure is not an update
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["reason"] == "last update too old"


def test_readyz_reaps_a_dead_run(client, worker, settings):
    stale = timezone.now() - timedelta(seconds=settings.QUANTSITE_RUN_STALE_SECONDS + 1)
    run = UpdateRun.objects.create(status="running", heartbeat_at=stale)
    client.get("/readyz")
    run.refresh_from_db()
    assert run.status == "failed"


def test_a_failing_database_check_leaks_no_error_text(client, worker, monkeypatch, settings):
    from operations import health

    monkeypatch.setattr(health, "_database", lambda: "unreachable")
    body = client.get("/readyz").json()
    assert body["reason"] == "database unreachable"
    redis = {"redis": "ok"} if settings.REDIS_URL else {}  # checked on its own
    assert {k: v for k, v in body["checks"].items() if k not in redis} == {
        "database": "unreachable",
        "migrations": "unknown",
        "worker": "unknown",
        "last_update": "unknown",
    }
    assert body["checks"].get("redis") == redis.get("redis")


def test_anonymous_json_status_callers_get_401_json_not_a_login_redirect(client):
    for url in ("/status.json", "/api/status/"):
        response = client.get(url)
        assert response.status_code == 401 and "detail" in response.json()


def test_api_status_gives_logged_in_users_the_readiness_json(logged_in, worker):
    finished_run()
    response = logged_in.get("/api/status/")
    assert response.status_code == 200 and response.json()["status"] == "ready"
