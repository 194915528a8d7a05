"""Export jobs: downloads too large for a request, written by the task queue.

``export_job_start`` counts the rows (1 query); at most ``QUANTSITE_EXPORT_DIRECT_ROWS``
the caller answers directly, otherwise it creates an ``ExportJob`` and queues
``reporting.tasks.write_export`` after commit. ``export_job_run`` (the task's body) reads
the tables through ``reporting.exports`` (the selectors' read path), writes the file
under ``DATA_DIR/exports`` beside its final name and renames it when complete, updating
``rows_done`` and the heartbeat every ``exports.PROGRESS_EVERY`` rows. A job whose
heartbeat is older than ``STALE_SECONDS`` (its worker was killed or restarted) is marked
interrupted by ``export_jobs_reap``, which every job page and every new job runs; it also
deletes the ``.part`` files such a worker left behind.

A user's second request for an export already queued or running gets that job back, and a
user has at most ``QUANTSITE_EXPORT_MAX_ACTIVE`` jobs queued or running at once: beyond
that ``export_job_start`` raises ``ExportLimitReached`` and queues nothing.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.db.models import Value
from django.db.models.functions import Greatest
from django.utils import timezone

from portfolio.models import Portfolio
from reporting import exports, selectors
from reporting.models import ExportJob

log = logging.getLogger(__name__)

TASK = "reporting.tasks.write_export"
STALE_SECONDS = 120  # a running job beats every PROGRESS_EVERY rows: about a second
ACTIVE = (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING)
# what export_job_run writes before the rename: ".export-<job id>-<hex>.<fmt>.part"
PART = re.compile(r"\.export-(\d+)-[0-9a-f]+\.[a-z]+\.part")


class ExportLimitReached(Exception):
    """The user already has ``QUANTSITE_EXPORT_MAX_ACTIVE`` jobs queued or running; the
    message says so and what to do."""


def export_dir() -> Path:
    """Where job files live: ``DATA_DIR/exports`` (created on first use)."""
    path = Path(settings.DATA_DIR) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class ExportStart:
    """What a download request gets: ``job`` None means small enough to answer directly."""

    rows: int
    job: ExportJob | None


def export_rows(*, portfolio: Portfolio, table: str) -> int:
    """Data rows of ``table`` (or of every table for "all"): 1 query."""
    counts = selectors.portfolio_row_counts(portfolio=portfolio)
    return sum(counts.values()) if table == exports.ALL else counts[table]


def export_needs_job(rows: int) -> bool:
    """Whether an export of ``rows`` data rows is too large to write inside a request
    (more than ``QUANTSITE_EXPORT_DIRECT_ROWS``)."""
    return rows > settings.QUANTSITE_EXPORT_DIRECT_ROWS


def export_job_start(*, user, portfolio: Portfolio, table: str, fmt: str) -> ExportStart:
    """Answer directly (``job`` None) when the export has at most
    ``QUANTSITE_EXPORT_DIRECT_ROWS`` rows; else a queued job, its task sent after commit.
    The user's same export already queued or running is returned instead of a second one
    (a second click does not write the file twice). Raises ``ExportLimitReached`` when the
    user already has ``QUANTSITE_EXPORT_MAX_ACTIVE`` other jobs queued or running."""
    rows = export_rows(portfolio=portfolio, table=table)
    if not export_needs_job(rows):
        return ExportStart(rows, None)
    export_jobs_reap()
    with transaction.atomic():
        # one start at a time per user (PostgreSQL), so two quick clicks make one job
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        same = dict(user=user, portfolio=portfolio, table=table, fmt=fmt)
        running = ExportJob.objects.filter(status__in=ACTIVE, **same).first()
        if running is not None:  # a second click: follow the job already on its way
            return ExportStart(rows, running)
        active = ExportJob.objects.filter(status__in=ACTIVE, user=user).count()
        if active >= settings.QUANTSITE_EXPORT_MAX_ACTIVE:
            raise ExportLimitReached(
                f"you already have {active} exports being prepared (at most "
                f"{settings.QUANTSITE_EXPORT_MAX_ACTIVE} at once): wait for one to finish, "
                "then ask again"
            )
        job = ExportJob.objects.create(
            **same,
            rows_total=rows,
            download_name=exports.export_filename(portfolio=portfolio, table=table, fmt=fmt),
            heartbeat_at=timezone.now(),
        )
        transaction.on_commit(lambda: _send(job.pk))
    return ExportStart(rows, job)


def _send(job_id: int) -> None:
    from django_q.tasks import async_task

    try:
        async_task(TASK, job_id, task_name=f"export {job_id}")
    except Exception as exc:  # a broker outage: say so on the job, do not leave it queued
        log.exception("could not queue export job %s", job_id)
        _finish(job_id, ExportJob.Status.FAILED, error=f"could not queue: {type(exc).__name__}")


def _finish(job_id: int, status: str, **fields) -> int:
    """Move a queued or running job to ``status`` (no effect on a finished one)."""
    return ExportJob.objects.filter(pk=job_id, status__in=ACTIVE).update(
        status=status, finished_at=timezone.now(), **fields
    )


def export_job_run(job_id: int) -> str:
    """Write job ``job_id``'s file (the task's body). Claims the job (queued -> running)
    so a job reaped or already run is left alone; a failure marks it failed with the
    error and leaves no partial file."""
    now = timezone.now()
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return f"export {job_id}: not queued, nothing to do"
    job = ExportJob.objects.select_related("portfolio").get(pk=job_id)
    name = f"export-{job.pk}-{secrets.token_hex(8)}.{job.fmt}"
    final = export_dir() / name
    partial = final.with_name(f".{name}.part")
    try:
        with partial.open("wb") as out:
            total = _write(job, out)
        partial.replace(final)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        log.exception("export job %s failed", job_id)
        _finish(job_id, ExportJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        return f"export {job_id}: failed"
    done = dict(rows_total=total, rows_done=total)  # the rows as written, not as counted
    if not _finish(job_id, ExportJob.Status.DONE, file_name=name, **done):
        final.unlink(missing_ok=True)  # reaped meanwhile: the row says interrupted
        return f"export {job_id}: interrupted"
    return f"export {job_id}: {total} rows"


def _write(job: ExportJob, out) -> int:
    """Write ``job``'s file to ``out``; the number of data rows written. Each table is
    read and written piece by piece (``exports.table_pieces``): the worker's memory
    stays bounded whatever the number of trades."""
    names = list(exports.TABLES) if job.table == exports.ALL else [job.table]
    pieces = {name: exports.table_pieces(job.portfolio, name) for name in names}
    progress = _progress(job.pk)
    if job.fmt == "csv":
        if len(pieces) != 1:
            raise ValueError("a CSV file holds one table")
        return exports.csv_write(pieces[job.table], out, progress)
    return exports.xlsx_write(pieces, out, progress)


def _progress(job_id: int):
    def report(rows_done: int) -> None:
        try:
            # a table read piece by piece may outgrow its count (an update wrote fills)
            ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.RUNNING).update(
                rows_done=rows_done,
                rows_total=Greatest("rows_total", Value(rows_done)),
                heartbeat_at=timezone.now(),
            )
        except DatabaseError:  # e.g. SQLite busy under an update: the file matters more
            log.warning("export job %s: progress not stored at %s rows", job_id, rows_done)

    return report


def export_jobs_reap() -> int:
    """Mark interrupted every queued or running job without a heartbeat for
    ``STALE_SECONDS`` (running) or ``Q_TIMEOUT`` (queued: no worker took it), and delete
    the files of jobs finished more than ``QUANTSITE_EXPORT_KEEP_HOURS`` ago. Returns how
    many jobs it interrupted. Then deletes the ``.part`` files of dead workers
    (``_parts_reap``)."""
    now = timezone.now()
    stale = {
        ExportJob.Status.RUNNING: now - timedelta(seconds=STALE_SECONDS),
        ExportJob.Status.QUEUED: now - timedelta(seconds=settings.Q_TIMEOUT),
    }
    reasons = {
        ExportJob.Status.RUNNING: "its worker stopped (a restart or a crash)",
        ExportJob.Status.QUEUED: "no task queue worker took it (is manage.py qcluster running?)",
    }
    reaped = 0
    for status, before in stale.items():
        reaped += ExportJob.objects.filter(status=status, heartbeat_at__lt=before).update(
            status=ExportJob.Status.INTERRUPTED, finished_at=now, error=reasons[status]
        )
    expired = now - timedelta(hours=settings.QUANTSITE_EXPORT_KEEP_HOURS)
    old = ExportJob.objects.filter(finished_at__lt=expired).exclude(file_name="")
    for job in old:
        path = export_job_path(job)
        if path is not None:
            path.unlink(missing_ok=True)
    old.update(file_name="", error="expired: the file was deleted")
    _parts_reap(now)
    return reaped


def _parts_reap(now) -> int:
    """Delete the ``.part`` files no live worker is writing: a worker killed mid-write
    (SIGKILL, a restart) never reaches its cleanup. A file is kept only while its job is
    running with a heartbeat younger than ``STALE_SECONDS``, whatever the file's mtime
    (an Excel writer may touch the file only at the end); a file whose job row is gone,
    interrupted, failed or done goes. The files are listed before the jobs are read: a
    file listed was opened after its job was claimed, so a job that just started is seen
    running. Returns how many files it deleted."""
    parts = [(path, PART.fullmatch(path.name)) for path in export_dir().glob(".export-*.part")]
    if not parts:
        return 0
    live = set(
        ExportJob.objects.filter(
            status=ExportJob.Status.RUNNING,
            heartbeat_at__gte=now - timedelta(seconds=STALE_SECONDS),
        ).values_list("pk", flat=True)
    )
    deleted = 0
    for path, match in parts:
        if match is not None and int(match.group(1)) in live:
            continue
        path.unlink(missing_ok=True)
        deleted += 1
    return deleted


def export_job_expires_at(job: ExportJob):
    """When ``export_jobs_reap`` deletes ``job``'s file (finished plus
    ``QUANTSITE_EXPORT_KEEP_HOURS``); None while it runs or once it has no file."""
    if job.finished_at is None or not job.file_name:
        return None
    return job.finished_at + timedelta(hours=settings.QUANTSITE_EXPORT_KEEP_HOURS)


def export_jobs_delete(*, jobs) -> int:
    """Delete the ``jobs`` (a queryset) and their files. A worker still writing one finds
    its row gone when it finishes and deletes the file it wrote."""
    for job in jobs:
        path = export_job_path(job)
        if path is not None:
            path.unlink(missing_ok=True)
    return jobs.delete()[0]


def export_job_get(*, user, pk: int) -> ExportJob | None:
    """``user``'s job ``pk`` (None when it is someone else's or does not exist), after
    reaping dead jobs, so a page never shows a job running forever."""
    export_jobs_reap()
    return ExportJob.objects.filter(pk=pk, user=user).select_related("portfolio").first()


def export_jobs_active(*, user) -> list[ExportJob]:
    """``user``'s jobs queued or running, oldest first."""
    return list(ExportJob.objects.filter(user=user, status__in=ACTIVE).order_by("pk"))


def export_job_path(job: ExportJob) -> Path | None:
    """The finished file of ``job``, or None (not done, expired, or a name that would
    leave the export directory)."""
    if not job.file_name:
        return None
    root = export_dir().resolve()
    path = (root / job.file_name).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path
