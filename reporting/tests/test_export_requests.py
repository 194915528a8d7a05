"""How a large export is asked for and handed back: a GET never queues a job (a page
elsewhere cannot make a logged-in browser queue work), only a POST with its CSRF token
does; a user has a bounded number of jobs on their way; the ``.part`` files of killed
workers are deleted; a finished file is streamed a chunk at a time under ASGI."""

from __future__ import annotations

import os
import re
import time
import warnings
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.utils import timezone

from portfolio.models import Portfolio
from reporting import export_jobs, export_views, exports, tasks
from reporting.models import ExportJob
from reporting.tests.test_export_jobs import add_trades
from reporting.tests.test_exports import make_portfolio

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    """A data directory per test, and every export of more than 10 rows needs a job."""
    settings.DATA_DIR = tmp_path
    settings.QUANTSITE_EXPORT_DIRECT_ROWS = 10
    return tmp_path


@pytest.fixture
def portfolio() -> Portfolio:
    return make_portfolio()


def rows_of(portfolio: Portfolio, table: str) -> int:
    return sum(len(f) for f in exports.export_frames(portfolio, table).values())


# --- a GET never queues work ------------------------------------------------------------


@pytest.mark.parametrize("url", ["/export/all.xlsx", "/export/trades.csv?portfolio={pk}"])
def test_a_get_of_a_large_export_asks_for_a_post_and_queues_nothing(
    logged_in, portfolio, url, django_capture_on_commit_callbacks
):
    url = url.format(pk=portfolio.pk)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        page = logged_in.get(url)  # what <img src="https://quantsite/export/all.xlsx"> does
    assert page.status_code == 200 and "Content-Disposition" not in page
    assert ExportJob.objects.count() == 0 and sent == []
    html = page.content.decode()
    table = "all" if "all" in url else "trades"
    assert f"This export is large ({rows_of(portfolio, table)} rows)" in html
    form = re.search(r'<form method="post" action="([^"]+)" id="export-start">(.*?)</form>', html)
    assert form is not None and form.group(1) == url.replace("&", "&amp;")
    assert 'name="csrfmiddlewaretoken"' in form.group(2) and "Prepare the file" in form.group(2)


def test_a_json_get_of_a_large_export_is_405_telling_it_to_post(logged_in, portfolio):
    response = logged_in.get("/export/trades.xlsx", HTTP_ACCEPT="application/json")
    assert response.status_code == 405 and response["Allow"] == "POST"
    body = response.json()
    assert body["rows"] == rows_of(portfolio, "trades")
    assert "POST to this URL" in body["error"] and ExportJob.objects.count() == 0


def test_a_small_export_is_a_direct_get_and_a_post_of_it_the_same_file(logged_in, portfolio):
    got = logged_in.get("/export/positions.csv")
    posted = logged_in.post("/export/positions.csv")
    assert got.status_code == posted.status_code == 200
    assert got.content == posted.content and got.content.startswith(b"strategy,ticker,")
    assert got["Content-Disposition"] == posted["Content-Disposition"]
    assert ExportJob.objects.count() == 0


def test_the_post_that_starts_a_job_needs_the_csrf_token(
    user, portfolio, django_capture_on_commit_callbacks
):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    # a cross-site form (no token): refused, nothing queued
    assert browser.post("/export/all.xlsx").status_code == 403
    assert browser.post("/export/all.xlsx", HTTP_ACCEPT="application/json").status_code == 403
    assert ExportJob.objects.count() == 0
    # the page's own form: its token starts the job
    html = browser.get("/export/all.xlsx").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        started = browser.post("/export/all.xlsx", {"csrfmiddlewaretoken": token})
    job = ExportJob.objects.get()
    assert started.status_code == 303 and started["Location"] == f"/export/jobs/{job.pk}/"
    assert (job.table, job.fmt, job.rows_total, len(sent)) == (
        "all", "xlsx", rows_of(portfolio, "all"), 1,
    )  # fmt: skip


def test_an_api_client_posts_with_the_token_header_and_gets_202(user, portfolio):
    api = Client(enforce_csrf_checks=True)
    api.force_login(user)
    api.get("/export/trades.csv")  # sets the csrftoken cookie
    token = api.cookies["csrftoken"].value
    response = api.post(
        "/export/trades.csv", HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=token
    )
    job = ExportJob.objects.get()
    assert response.status_code == 202 and response.json()["id"] == job.pk
    assert response.json()["status_url"] == f"/export/jobs/{job.pk}/"


# --- at most QUANTSITE_EXPORT_MAX_ACTIVE jobs on their way per user --------------------------


def queued(user, portfolio, table: str, fmt: str = "csv", **fields) -> ExportJob:
    name = exports.export_filename(portfolio=portfolio, table=table, fmt=fmt)
    return ExportJob.objects.create(
        user=user, portfolio=portfolio, table=table, fmt=fmt, heartbeat_at=timezone.now(),
        download_name=name, **fields,
    )  # fmt: skip


def test_a_user_over_the_limit_gets_429_and_nothing_is_queued(
    logged_in, user, portfolio, settings, django_user_model, django_capture_on_commit_callbacks
):
    assert settings.QUANTSITE_EXPORT_MAX_ACTIVE == 3
    mine = [
        queued(user, portfolio, "equity"),
        queued(user, portfolio, "risk", status="running"),
        queued(user, portfolio, "violations", "xlsx"),
    ]
    queued(user, portfolio, "positions", status="done")  # finished: does not count
    other = django_user_model.objects.create_user("other", password="x-pass-word-2")
    queued(other, portfolio, "trades")  # someone else's: does not count
    with django_capture_on_commit_callbacks(execute=False) as sent:
        page = logged_in.post("/export/trades.csv")
        api = logged_in.post("/export/trades.csv", HTTP_ACCEPT="application/json")
    assert page.status_code == api.status_code == 429 and sent == []
    message = (
        "you already have 3 exports being prepared (at most 3 at once): wait for one to "
        "finish, then ask again"
    )
    assert api.json() == {"error": message, "rows": None}
    html = page.content.decode()
    assert f"Not started: {message}." in html and 'id="export-start"' not in html
    for job in mine:  # the page links the jobs the user is waiting for
        assert f'href="/export/jobs/{job.pk}/"' in html
    assert ExportJob.objects.filter(user=user, table="trades").count() == 0
    # the same export as one on its way is that job, limit or not
    again = logged_in.post("/export/equity.csv")
    assert again.status_code == 303 and again["Location"] == f"/export/jobs/{mine[0].pk}/"
    # one finishes: the next one starts
    ExportJob.objects.filter(pk=mine[1].pk).update(status="done")
    assert logged_in.post("/export/trades.csv").status_code == 303
    assert ExportJob.objects.filter(user=user, table="trades", status="queued").count() == 1


# --- the .part files of killed workers ------------------------------------------------------


def part(job_id: int, fmt: str = "xlsx", age_s: float = 0.0):
    """A half-written file as export_job_run names it, last written ``age_s`` ago."""
    path = export_jobs.export_dir() / f".export-{job_id}-{os.urandom(8).hex()}.{fmt}.part"
    path.write_bytes(b"PK half a workbook")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_the_reaper_deletes_the_part_files_no_live_worker_is_writing(user, portfolio):
    stale = timezone.now() - timedelta(seconds=export_jobs.STALE_SECONDS + 5)
    old_s = export_jobs.STALE_SECONDS + 60
    live = queued(user, portfolio, "trades", "xlsx", status="running")
    killed = queued(user, portfolio, "all", "xlsx", status="running")
    ExportJob.objects.filter(pk=killed.pk).update(heartbeat_at=stale)  # SIGKILLed worker
    gone = {
        status: queued(user, portfolio, "risk", status=status)
        for status in ("done", "failed", "interrupted")
    }
    keep = [part(live.pk), part(live.pk, age_s=old_s)]  # a live writer; mtime may lag
    doomed = [
        part(killed.pk),
        part(killed.pk, age_s=old_s),
        part(999_999, "csv"),  # its row deleted
        *(part(job.pk, "csv") for job in gone.values()),
    ]
    finished = export_jobs.export_dir() / f"export-{live.pk}-0123456789abcdef.xlsx"
    finished.write_bytes(b"a finished file of another job")
    assert export_jobs.export_jobs_reap() == 1  # the killed job
    assert all(p.exists() for p in keep) and finished.exists()
    assert not any(p.exists() for p in doomed)
    killed.refresh_from_db()
    live.refresh_from_db()
    assert (killed.status, live.status) == ("interrupted", "running")


def test_a_killed_workers_part_file_goes_when_its_job_page_is_next_seen(logged_in, user, portfolio):
    job = queued(user, portfolio, "trades", "xlsx", status="running", rows_total=500)
    left = part(job.pk)  # what its worker had written when it was killed
    assert logged_in.get(f"/export/jobs/{job.pk}/").status_code == 200
    assert left.exists()  # its heartbeat is fresh: maybe still writing
    ExportJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=export_jobs.STALE_SECONDS + 1)
    )
    assert b"did not finish (interrupted)" in logged_in.get(f"/export/jobs/{job.pk}/").content
    assert not left.exists()


# --- downloads are streamed under ASGI ------------------------------------------------------


def finished_job(user, portfolio, fmt: str) -> tuple[ExportJob, bytes]:
    job = queued(user, portfolio, "trades", fmt)
    tasks.write_export(job.pk)
    job.refresh_from_db()
    return job, export_jobs.export_job_path(job).read_bytes()


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_under_asgi_a_download_is_sent_a_chunk_at_a_time(user, portfolio, monkeypatch, fmt):
    add_trades(portfolio, 300)
    monkeypatch.setattr(export_views, "DOWNLOAD_CHUNK", 4096)
    job, whole = finished_job(user, portfolio, fmt)
    assert len(whole) > 3 * 4096
    asgi = AsyncClient()
    asgi.force_login(user)

    async def download():  # driven from this thread: the ORM runs in the test transaction
        response = await asgi.get(f"/export/jobs/{job.pk}/download")
        assert response.status_code == 200
        assert response.is_async  # a sync iterator would be read whole before a byte
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "... must consume synchronous iterators ..."
            parts = [part async for part in response]  # what ASGIHandler does to send it
        return response, parts

    response, parts = async_to_sync(download)()
    assert b"".join(parts) == whole
    assert [len(p) for p in parts[:-1]] == [4096] * (len(parts) - 1) and 0 < len(parts[-1])
    assert response["Content-Length"] == str(len(whole))
    assert response["Content-Type"] == exports.CONTENT_TYPES[fmt]
    assert response["Content-Disposition"] == f'attachment; filename="{job.download_name}"'


def test_under_wsgi_a_download_is_the_file_with_its_length(logged_in, user, portfolio):
    job, whole = finished_job(user, portfolio, "csv")
    response = logged_in.get(f"/export/jobs/{job.pk}/download")
    assert response.status_code == 200 and b"".join(response.streaming_content) == whole
    assert response["Content-Length"] == str(len(whole))
    assert response["Content-Disposition"] == f'attachment; filename="{job.download_name}"'
    assert job.download_name == exports.export_filename(
        portfolio=portfolio, table="trades", fmt="csv"
    )


def test_a_browser_gets_an_excel_download_as_is_and_a_csv_one_gzipped(logged_in, user, portfolio):
    """Browsers accept gzip: a workbook (a zip already) comes as it is, with its length;
    CSV, text, compressed (``quantsite.compression.GZipTextMiddleware``)."""
    import gzip

    gz = {"accept-encoding": "gzip"}
    book, whole = finished_job(user, portfolio, "xlsx")
    response = logged_in.get(f"/export/jobs/{book.pk}/download", headers=gz)
    assert "Content-Encoding" not in response
    assert response["Content-Length"] == str(len(whole))
    assert b"".join(response.streaming_content) == whole
    table, text = finished_job(user, portfolio, "csv")
    response = logged_in.get(f"/export/jobs/{table.pk}/download", headers=gz)
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(response.streaming_content)) == text
