"""Download views: ``/export/<table>.<csv|xlsx>`` and ``/export/all.xlsx`` (login required),
and the background job pages ``/export/jobs/<id>/`` and ``/export/jobs/<id>/download``.

``?portfolio=<id>`` picks the portfolio; without it, the live portfolio
(``reporting.selectors.portfolio_get``). An export of at most
``QUANTSITE_EXPORT_DIRECT_ROWS`` rows is the response itself; a larger one becomes an
``ExportJob`` written by the task queue (``reporting.export_jobs``): a browser is
redirected (303) to the job's page, which refreshes itself while the job runs and links
the file when it is done; a client asking for JSON (``Accept: application/json``) gets
202 and the job as JSON, whose ``status_url`` it polls. A job and its file are only ever
served to the user who asked for it. The tables and writers live in ``reporting.exports``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from reporting import export_jobs, exports, selectors
from reporting.models import ExportJob
from reporting.pages.params import is_id

REFRESH_SECONDS = 2


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def streamed(request, chunks: Iterator[bytes]) -> Iterator[bytes] | AsyncIterator[bytes]:
    """``chunks`` as the body of a ``StreamingHttpResponse`` that stays streamed under
    the server at hand. Under ASGI (daphne serves the site) Django reads a synchronous
    iterator whole into a list before it sends a byte (``StreamingHttpResponse.__aiter__``):
    there the chunks are pulled one at a time, each in the request's thread (its
    database connection), so memory holds one chunk. Under WSGI (and the test client)
    the iterator itself."""
    if isinstance(request, ASGIRequest):
        return _one_at_a_time(chunks)
    return chunks


async def _one_at_a_time(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    pull = sync_to_async(next, thread_sensitive=True)
    end = b""  # csv_chunks never yields an empty chunk
    try:
        while chunk := await pull(chunks, end):
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:  # a download cut short: the generator's cleanup runs
            await sync_to_async(close, thread_sensitive=True)()


def _response(request, table: str, fmt: str) -> HttpResponse:
    raw = request.GET.get("portfolio")
    if raw is not None and not is_id(raw):
        return HttpResponseBadRequest("portfolio must be a portfolio id (a positive integer)")
    portfolio = selectors.portfolio_get(pk=int(raw) if raw is not None else None)
    if portfolio is None:
        raise Http404("no such portfolio" if raw is not None else "no live portfolio yet")
    start = export_jobs.export_job_start(
        user=request.user, portfolio=portfolio, table=table, fmt=fmt
    )
    if start.job is not None:
        if _wants_json(request):
            return JsonResponse(_job_json(start.job), status=202)
        # 303 See Other: the download is at another address, fetched with a GET
        return HttpResponseRedirect(_status_url(start.job), status=303)
    body = exports.export_bytes(exports.export_frames(portfolio, table), fmt)
    response = HttpResponse(body, content_type=exports.CONTENT_TYPES[fmt])
    filename = exports.export_filename(portfolio=portfolio, table=table, fmt=fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@login_required
def export(request, table: str, fmt: str):
    """One table as CSV or Excel."""
    if table not in exports.TABLES:
        raise Http404(f"unknown table {table!r}; choose one of {', '.join(exports.TABLES)}")
    if fmt not in exports.FORMATS:
        raise Http404(f"unknown format {fmt!r}; choose csv or xlsx")
    return _response(request, table, fmt)


@require_GET
@login_required
def export_all(request):
    """Every table in one workbook, one sheet each."""
    return _response(request, exports.ALL, "xlsx")


def _status_url(job: ExportJob) -> str:
    return reverse("reporting:export-job", kwargs={"pk": job.pk})


def _job_json(job: ExportJob) -> dict:
    done = job.status == ExportJob.Status.DONE and bool(job.file_name)
    return {
        "id": job.pk,
        "table": job.table,
        "format": job.fmt,
        "portfolio": job.portfolio_id,
        "status": job.status,
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "progress": job.rows_done / job.rows_total if job.rows_total else 0.0,
        "error": job.error,
        "status_url": _status_url(job),
        "download_url": (
            reverse("reporting:export-job-download", kwargs={"pk": job.pk}) if done else None
        ),
        "filename": job.download_name,
    }


@require_GET
@login_required
def export_job(request, pk: int):
    """A background export's progress (HTML that refreshes itself until the job is
    finished, or JSON), and its download link when done."""
    job = export_jobs.export_job_get(user=request.user, pk=pk)
    if job is None:
        raise Http404("no such export")
    data = _job_json(job)
    if _wants_json(request) or request.GET.get("format") == "json":
        return JsonResponse(data)
    response = render(request, "reporting/export_job.html", {"job": job, "data": data})
    if not job.finished:
        response["Refresh"] = str(REFRESH_SECONDS)
    return response


@require_GET
@login_required
def export_job_download(request, pk: int):
    """The file of a finished background export (its owner only)."""
    job = export_jobs.export_job_get(user=request.user, pk=pk)
    path = export_jobs.export_job_path(job) if job is not None else None
    if job is None or job.status != ExportJob.Status.DONE or path is None:
        raise Http404("no such export file (not finished, expired or not yours)")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=job.download_name,
        content_type=exports.CONTENT_TYPES[job.fmt],
    )
