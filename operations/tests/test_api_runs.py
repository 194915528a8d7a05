"""The run history's filters (``/api/runs/``): status, trigger, portfolio, start/end on the
start date; strict parameters; cursor pages; queries equal for 10 and 1,000 runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portfolio.models import UpdateRun
from portfolio.tests.api_data import cast_build

pytestmark = pytest.mark.django_db


def runs(n: int, portfolio=None) -> list[UpdateRun]:
    made = UpdateRun.objects.bulk_create(
        UpdateRun(
            portfolio=portfolio,
            trigger="manual" if i % 2 else "schedule",
            status="failed" if i % 3 == 0 else "success",
        )
        for i in range(n)
    )
    for i, run in enumerate(made):  # auto_now_add: date them one day apart afterwards
        run.started_at = datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=i)
    UpdateRun.objects.bulk_update(made, ["started_at"])
    return made


def run_ids(**lookups) -> list[int]:
    qs = UpdateRun.objects.filter(**lookups).order_by("-started_at", "-id")
    return list(qs.values_list("id", flat=True))


def got(client, url) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def test_each_run_filter_narrows_the_list_as_documented(logged_in):
    cast = cast_build()
    runs(6)
    runs(3, portfolio=cast.portfolio)
    assert got(logged_in, "/api/runs/") == run_ids()
    assert got(logged_in, "/api/runs/?status=failed") == run_ids(status="failed")
    assert got(logged_in, "/api/runs/?trigger=manual") == run_ids(trigger="manual")
    assert got(logged_in, f"/api/runs/?portfolio={cast.portfolio.pk}") == run_ids(
        portfolio=cast.portfolio
    )
    window = got(logged_in, "/api/runs/?start=2026-01-02&end=2026-01-03")
    assert window == run_ids(started_at__date__range=("2026-01-02", "2026-01-03"))
    assert len(window) == 4  # two days of each batch


@pytest.mark.parametrize(
    ("query", "named"),
    [("status=sleeping", "status"), ("since=2026-01-01", "since"), ("end=2026-1-1x", "end")],
)
def test_a_bad_run_query_is_a_400_naming_the_parameter(logged_in, query, named):
    response = logged_in.get(f"/api/runs/?{query}")
    assert response.status_code == 400 and list(response.json()) == [named]


def test_the_cursor_pages_through_the_runs(logged_in):
    runs(7)
    first = logged_in.get("/api/runs/?page_size=4").json()
    second = logged_in.get(first["next"]).json()
    assert first["count"] == 7 and second["next"] is None
    assert [r["id"] for r in first["results"] + second["results"]] == run_ids()


@pytest.mark.parametrize("n", [10, 1000])
def test_run_list_queries_do_not_grow(logged_in, django_assert_num_queries, n):
    runs(n)
    with django_assert_num_queries(4):  # session, user, count, page
        assert logged_in.get("/api/runs/?status=success").status_code == 200
