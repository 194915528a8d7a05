"""Large downloads run as background jobs: the POST that starts one answers at once (a
redirect or a 202 with the job), the task writes the same file the direct path writes and counts its
rows as it goes, a failure or a dead worker is said on the job, and only the user who
asked gets the file."""

from __future__ import annotations

import io
from datetime import date, timedelta

import openpyxl
import pytest
from django.utils import timezone

from portfolio.models import Instrument, Portfolio, Trade
from reporting import export_jobs, exports, tasks
from reporting.models import ExportJob
from reporting.tests.test_exports import make_portfolio

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    """A data directory per test: job ids restart with each test's rolled-back database."""
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def portfolio() -> Portfolio:
    return make_portfolio()


@pytest.fixture
def tiny_threshold(settings):
    """Every export with more than 10 rows goes through a job."""
    settings.QUANTSITE_EXPORT_DIRECT_ROWS = 10
    return settings


@pytest.fixture
def stranger(django_user_model):
    from django.test import Client

    other = Client()
    other.force_login(django_user_model.objects.create_user("other", password="x-pass-word-2"))
    return other


def add_trades(portfolio: Portfolio, n: int) -> None:
    """``n`` synthetic fills (bulk insert), beside the portfolio's real ones."""
    strategy = portfolio.strategies.order_by("id").first()
    aapl = Instrument.objects.get(ticker="AAPL")
    day = date(1990, 7, 2)
    Trade.objects.bulk_create(
        (
            Trade(
                strategy=strategy,
                instrument=aapl,
                date=day + timedelta(days=i // 100),
                side="buy" if i % 2 else "sell",
                quantity=1.0 + i / 7,
                price=10.0 + i / 3,
                value=(1.0 + i / 7) * (10.0 + i / 3),
                cost=0.01 * i,
                realized_pnl=0.0,
                reason="signal",
            )
            for i in range(n)
        ),
        batch_size=5000,
    )


def ask(client, url: str, django_capture_on_commit_callbacks, **headers):
    """POST ``url`` (what the "Prepare the file" form does); the task sends queued after
    commit are captured, not run."""
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = client.post(url, **headers)
    return response, sent


# --- the request never writes a large file ---------------------------------------------------


def test_an_export_of_100000_trades_to_excel_is_queued_not_written_in_the_request(
    logged_in, portfolio, django_capture_on_commit_callbacks
):
    add_trades(portfolio, 100_000)
    total = Trade.objects.filter(strategy__portfolio=portfolio).count()
    response, sent = ask(logged_in, "/export/trades.xlsx", django_capture_on_commit_callbacks)
    # not the workbook: a redirect to the job's page, and one task to send after commit
    assert response.status_code == 303 and "Content-Disposition" not in response
    job = ExportJob.objects.get()
    assert response["Location"] == f"/export/jobs/{job.pk}/"
    assert (job.status, job.table, job.fmt, job.rows_total, job.rows_done) == (
        "queued",
        "trades",
        "xlsx",
        total,
        0,
    )
    assert len(sent) == 1 and not list(export_jobs.export_dir().glob(f"export-{job.pk}-*"))
    page = logged_in.get(response["Location"])
    assert page.status_code == 200 and page["Refresh"] == "2"
    assert b"Waiting for a task queue worker" in page.content


def test_an_api_client_gets_202_and_the_job_to_poll(
    logged_in, portfolio, tiny_threshold, django_capture_on_commit_callbacks
):
    response, _ = ask(
        logged_in,
        "/export/all.xlsx",
        django_capture_on_commit_callbacks,
        HTTP_ACCEPT="application/json",
    )
    job = ExportJob.objects.get()
    body = response.json()
    assert response.status_code == 202 and body["status"] == "queued"
    assert body["status_url"] == f"/export/jobs/{job.pk}/" and body["download_url"] is None
    assert body["rows_total"] == sum(
        len(f) for f in exports.export_frames(portfolio, "all").values()
    )


def test_a_second_click_follows_the_job_already_queued(
    logged_in, portfolio, tiny_threshold, django_capture_on_commit_callbacks
):
    first, _ = ask(logged_in, "/export/trades.csv", django_capture_on_commit_callbacks)
    again, sent = ask(logged_in, "/export/trades.csv", django_capture_on_commit_callbacks)
    assert first["Location"] == again["Location"] and ExportJob.objects.count() == 1
    assert sent == []


def test_a_small_export_is_still_the_response_itself(logged_in, portfolio):
    response = logged_in.get("/export/risk.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert ExportJob.objects.count() == 0


# --- the task writes the same file, with progress --------------------------------------------


@pytest.mark.parametrize(
    "url, table, fmt",
    [("/export/all.xlsx", "all", "xlsx"), ("/export/trades.csv", "trades", "csv")],
)
def test_the_job_writes_the_file_the_direct_path_writes_and_counts_its_rows(
    logged_in, portfolio, settings, monkeypatch, url, table, fmt,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.QUANTSITE_EXPORT_DIRECT_ROWS = 10**9
    direct = logged_in.get(url)
    settings.QUANTSITE_EXPORT_DIRECT_ROWS = 10
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 10)
    seen: list[tuple[str, int, int]] = []  # the job row as stored after each report
    real = export_jobs._progress

    def recording(job_id):
        report = real(job_id)

        def spy(rows_done):
            report(rows_done)
            stored = ExportJob.objects.get(pk=job_id)
            seen.append((stored.status, stored.rows_done, stored.rows_total))

        return spy

    monkeypatch.setattr(export_jobs, "_progress", recording)
    response, sent = ask(logged_in, url, django_capture_on_commit_callbacks)
    assert response.status_code == 303 and len(sent) == 1
    job = ExportJob.objects.get()
    assert tasks.write_export(job.pk) == f"export {job.pk}: {job.rows_total} rows"
    job.refresh_from_db()
    total = sum(len(f) for f in exports.export_frames(portfolio, table).values())
    assert (job.status, job.rows_done, job.rows_total, job.error) == ("done", total, total, "")
    # progress: stored while running, rising in steps of at most 10 rows to the total
    done = [d for _, d, _ in seen]
    assert 0 < done[0] <= 10 and done[-1] == total and done == sorted(done)
    assert max(b - a for a, b in zip(done, done[1:], strict=False)) <= 10 and len(done) > 4
    assert {(s, t) for s, _, t in seen} == {("running", total)}
    page = logged_in.get(f"/export/jobs/{job.pk}/")
    assert "Refresh" not in page and b'id="export-download"' in page.content
    status = logged_in.get(f"/export/jobs/{job.pk}/?format=json").json()
    assert status["progress"] == 1.0 and status["download_url"] == f"/export/jobs/{job.pk}/download"
    file = logged_in.get(status["download_url"])
    assert file["Content-Disposition"] == direct["Content-Disposition"]
    assert file["Content-Type"] == direct["Content-Type"]
    body = b"".join(file.streaming_content)
    if fmt == "csv":
        assert body == direct.content
    else:  # a workbook's zip carries its creation time: compare every cell
        assert workbook_cells(body) == workbook_cells(direct.content)


def workbook_cells(data: bytes) -> dict:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in wb}


@pytest.mark.slow
def test_the_task_writes_100000_trades_to_excel(portfolio, user):
    add_trades(portfolio, 100_000)
    job = ExportJob.objects.create(user=user, portfolio=portfolio, table="trades", fmt="xlsx")
    tasks.write_export(job.pk)
    job.refresh_from_db()
    assert job.status == "done" and job.rows_done == job.rows_total > 100_000
    ws = openpyxl.load_workbook(export_jobs.export_job_path(job), read_only=True)["trades"]
    rows = ws.iter_rows(values_only=True)
    assert next(rows)[:3] == ("date", "strategy", "ticker")
    data = list(rows)
    # the last fill is the last synthetic one (i = 99,999), 16 significant digits in Excel
    assert len(data) == job.rows_total and data[-1][4] == float(f"{1.0 + 99_999 / 7:.16g}")


# --- failures, dead workers, other users ----------------------------------------------------


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_a_failing_export_says_why_and_leaves_no_file(portfolio, user, monkeypatch, fmt):
    def broken(table, out, progress=None):
        out.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(exports, f"{fmt}_write", broken)  # the writer the job calls
    job = ExportJob.objects.create(user=user, portfolio=portfolio, table="trades", fmt=fmt)
    assert tasks.write_export(job.pk) == f"export {job.pk}: failed"
    job.refresh_from_db()
    assert (job.status, job.error, job.file_name) == ("failed", "OSError: disk full", "")
    assert job.finished_at is not None and list(export_jobs.export_dir().iterdir()) == []


def test_a_job_whose_worker_died_is_marked_interrupted_not_left_running(logged_in, portfolio, user):
    long_ago = timezone.now() - timedelta(seconds=export_jobs.STALE_SECONDS + 5)
    dead = ExportJob.objects.create(
        user=user, portfolio=portfolio, table="all", fmt="xlsx", status="running",
        rows_total=100, rows_done=40, heartbeat_at=long_ago,
    )  # fmt: skip
    alive = ExportJob.objects.create(
        user=user, portfolio=portfolio, table="all", fmt="xlsx", status="running",
        rows_total=100, rows_done=40, heartbeat_at=timezone.now(),
    )  # fmt: skip
    page = logged_in.get(f"/export/jobs/{dead.pk}/")
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == "interrupted" and "worker stopped" in dead.error
    assert b"did not finish (interrupted)" in page.content
    assert alive.status == "running"
    assert b'id="export-error"' in page.content and "Refresh" not in page
    # the task, if it ever runs late, leaves an interrupted job alone
    assert tasks.write_export(dead.pk) == f"export {dead.pk}: not queued, nothing to do"


def test_a_queued_job_no_worker_took_is_interrupted_after_the_task_timeout(
    portfolio, user, settings
):
    job = ExportJob.objects.create(
        user=user, portfolio=portfolio, table="trades", fmt="csv",
        heartbeat_at=timezone.now() - timedelta(seconds=settings.Q_TIMEOUT + 1),
    )  # fmt: skip
    assert export_jobs.export_jobs_reap() == 1
    job.refresh_from_db()
    assert job.status == "interrupted" and "no task queue worker" in job.error


def test_only_the_owner_sees_the_job_and_its_file(logged_in, stranger, client, portfolio, user):
    job = ExportJob.objects.create(user=user, portfolio=portfolio, table="risk", fmt="csv")
    tasks.write_export(job.pk)
    urls = [f"/export/jobs/{job.pk}/", f"/export/jobs/{job.pk}/download"]
    for url in urls:
        assert logged_in.get(url).status_code == 200
        assert stranger.get(url).status_code == 404
    client.logout()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_file_name_outside_the_export_directory_is_never_served(logged_in, portfolio, user):
    secret = export_jobs.export_dir().parent / "secret.txt"
    secret.write_text("not an export")
    job = ExportJob.objects.create(
        user=user, portfolio=portfolio, table="risk", fmt="csv", status="done",
        file_name="../secret.txt", download_name="x.csv",
    )  # fmt: skip
    assert export_jobs.export_job_path(job) is None
    assert logged_in.get(f"/export/jobs/{job.pk}/download").status_code == 404
    secret.unlink()


def test_an_unfinished_job_has_no_download(logged_in, portfolio, user):
    job = ExportJob.objects.create(user=user, portfolio=portfolio, table="risk", fmt="csv")
    assert logged_in.get(f"/export/jobs/{job.pk}/download").status_code == 404


def test_old_files_are_deleted_and_the_page_says_so(logged_in, portfolio, user, settings):
    job = ExportJob.objects.create(user=user, portfolio=portfolio, table="risk", fmt="csv")
    tasks.write_export(job.pk)
    job.refresh_from_db()
    path = export_jobs.export_job_path(job)
    hours = settings.QUANTSITE_EXPORT_KEEP_HOURS + 1
    ExportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(hours=hours))
    page = logged_in.get(f"/export/jobs/{job.pk}/")
    assert not path.exists() and b'id="export-expired"' in page.content
    assert logged_in.get(f"/export/jobs/{job.pk}/download").status_code == 404


def test_the_admin_lists_jobs_and_shows_one_read_only(client, django_user_model, portfolio, user):
    root = django_user_model.objects.create_superuser("root", password="x-not-real-1")
    client.force_login(root)
    job = ExportJob.objects.create(
        user=user, portfolio=portfolio, table="trades", fmt="xlsx", status="running",
        rows_total=4000, rows_done=1000,
    )  # fmt: skip
    listing = client.get("/admin/reporting/exportjob/?status__exact=running")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "trades.xlsx" in html and "1,000 / 4,000 rows (25%)" in html and "quant" in html
    page = client.get(f"/admin/reporting/exportjob/{job.pk}/change/")
    assert page.status_code == 200 and page.context_data["has_change_permission"] is False
    html = page.content.decode()
    assert 'name="status"' not in html and 'name="rows_done"' not in html  # shown, not fields
    assert client.get("/admin/reporting/exportjob/add/").status_code == 403


def test_deleting_a_job_in_the_admin_deletes_its_file(client, django_user_model, portfolio, user):
    client.force_login(django_user_model.objects.create_superuser("root", password="x-not-1"))
    job = ExportJob.objects.create(user=user, portfolio=portfolio, table="risk", fmt="csv")
    tasks.write_export(job.pk)
    path = export_jobs.export_job_path(ExportJob.objects.get(pk=job.pk))
    assert path is not None and path.is_file()
    response = client.post(f"/admin/reporting/exportjob/{job.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not ExportJob.objects.filter(pk=job.pk).exists()
    assert not path.exists()


def test_a_csv_job_counts_the_rows_it_wrote_when_the_table_grew_after_the_count(
    portfolio, user, monkeypatch, caplog
):
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 10)
    add_trades(portfolio, 35)
    n = Trade.objects.filter(strategy__portfolio=portfolio).count()
    # counted at the click as 1 row; the update wrote the others before the worker ran
    job = ExportJob.objects.create(
        user=user, portfolio=portfolio, table="trades", fmt="csv", rows_total=1
    )
    assert tasks.write_export(job.pk) == f"export {job.pk}: {n} rows"
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total) == ("done", n, n)
    assert "progress not stored" not in caplog.text  # rows_done never passed rows_total
    body = export_jobs.export_job_path(job).read_bytes()
    assert body == exports.export_bytes({"trades": exports.trades_frame(portfolio)}, "csv")
