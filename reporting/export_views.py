"""Download views: ``/export/<table>.<csv|xlsx>`` and ``/export/all.xlsx`` (login required),
and the background job pages ``/export/jobs/<id>/`` and ``/export/jobs/<id>/download``.

``?portfolio=<id>`` picks the portfolio; without it, the live portfolio
(``reporting.selectors.portfolio_get``). An export of at most
``QUANTSITE_EXPORT_DIRECT_ROWS`` rows is the response itself (GET). A larger one becomes an
``ExportJob`` written by the task queue (``reporting.export_jobs``), and only a POST (with
its CSRF token) starts one: a GET never queues work, so a page elsewhere cannot make a
logged-in browser queue exports (``<img src=".../export/all.xlsx">``). A GET of a large
export answers a page saying so with a "Prepare the file" form that POSTs to the same URL
(a JSON client gets 405 telling it to POST). The POST redirects a browser (303) to the
job's page, which refreshes itself while the job runs and links the file when it is done;
a client asking for JSON (``Accept: application/json``) gets 202 and the job as JSON,
whose ``status_url`` it polls. A user over ``QUANTSITE_EXPORT_MAX_ACTIVE`` jobs queued or
running gets 429 and nothing is queued. A job and its file are only ever served to the
user who asked for it; the file is streamed a chunk at a time under ASGI too. The tables
and writers live in ``reporting.exports``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods

from reporting import export_jobs, exports, selectors
from reporting.models import ExportJob
from reporting.pages.params import is_id

REFRESH_SECONDS = 2
DOWNLOAD_CHUNK = 256 * 1024  # bytes a download holds in memory at once, per request


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
    end = b""  # neither csv_chunks nor a download's file chunks yields an empty chunk
    try:
        while chunk := await pull(chunks, end):
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:  # a download cut short: the generator's cleanup runs
            await sync_to_async(close, thread_sensitive=True)()


def _portfolio(request):
    """The portfolio of ``?portfolio=<id>`` (or the live one); a 400 response for a
    malformed id; Http404 when there is none."""
    raw = request.GET.get("portfolio")
    if raw is not None and not is_id(raw):
        return HttpResponseBadRequest("portfolio must be a portfolio id (a positive integer)")
    portfolio = selectors.portfolio_get(pk=int(raw) if raw is not None else None)
    if portfolio is None:
        raise Http404("no such portfolio" if raw is not None else "no live portfolio yet")
    return portfolio


def _response(request, table: str, fmt: str) -> HttpResponse:
    portfolio = _portfolio(request)
    if isinstance(portfolio, HttpResponse):
        return portfolio
    if request.method == "POST":
        return _start(request, portfolio, table, fmt)
    rows = export_jobs.export_rows(portfolio=portfolio, table=table)
    if export_jobs.export_needs_job(rows):  # a GET never queues work (see the docstring)
        return _large(request, portfolio, table, fmt, rows=rows)
    return _direct(portfolio, table, fmt)


def _direct(portfolio, table: str, fmt: str) -> HttpResponse:
    body = exports.export_bytes(exports.export_frames(portfolio, table), fmt)
    response = HttpResponse(body, content_type=exports.CONTENT_TYPES[fmt])
    filename = exports.export_filename(portfolio=portfolio, table=table, fmt=fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _start(request, portfolio, table: str, fmt: str) -> HttpResponse:
    """POST: queue the job (or follow the user's identical one), 303 to its page or 202
    JSON; 429 when the user has too many jobs queued or running; a small export is the
    file itself, as its GET."""
    try:
        start = export_jobs.export_job_start(
            user=request.user, portfolio=portfolio, table=table, fmt=fmt
        )
    except export_jobs.ExportLimitReached as refused:
        return _large(request, portfolio, table, fmt, rows=None, error=str(refused))
    if start.job is None:
        return _direct(portfolio, table, fmt)
    if _wants_json(request):
        return JsonResponse(_job_json(start.job), status=202)
    # 303 See Other: the job's page is at another address, fetched with a GET
    return HttpResponseRedirect(_status_url(start.job), status=303)


def _large(request, portfolio, table, fmt, *, rows, error=None) -> HttpResponse:
    """A GET of an export that needs a job (200: a page with the POST form; JSON: 405),
    or a POST refused over the user's limit (429, ``error``)."""
    status = 429 if error else 405
    if _wants_json(request):
        message = error or (
            f"this export has {rows} rows (more than {settings.QUANTSITE_EXPORT_DIRECT_ROWS}):"
            " POST to this URL (with the CSRF token) to start a background job"
        )
        response = JsonResponse({"error": message, "rows": rows}, status=status)
        if not error:
            response["Allow"] = "POST"
        return response
    context = {
        "target": portfolio,
        "table": table,
        "fmt": fmt,
        "rows": rows,
        "error": error,
        "action": request.get_full_path(),
        "filename": exports.export_filename(portfolio=portfolio, table=table, fmt=fmt),
        "active": export_jobs.export_jobs_active(user=request.user),
    }
    return render(request, "reporting/export_confirm.html", context, status=429 if error else 200)


@require_http_methods(["GET", "POST"])
@login_required
def export(request, table: str, fmt: str):
    """One table as CSV or Excel: GET answers a small one; POST starts a large one."""
    if table not in exports.TABLES:
        raise Http404(f"unknown table {table!r}; choose one of {', '.join(exports.TABLES)}")
    if fmt not in exports.FORMATS:
        raise Http404(f"unknown format {fmt!r}; choose csv or xlsx")
    return _response(request, table, fmt)


@require_http_methods(["GET", "POST"])
@login_required
def export_all(request):
    """Every table in one workbook, one sheet each (GET if small, POST to start a job)."""
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
    """The file of a finished background export (its owner only), streamed: under ASGI
    one ``DOWNLOAD_CHUNK`` at a time (``streamed``), not read whole into memory first as
    Django does with a synchronous iterator (``FileResponse``). The file is opened here, so
    a reaper deleting it meanwhile does not cut the download short."""
    job = export_jobs.export_job_get(user=request.user, pk=pk)
    path = export_jobs.export_job_path(job) if job is not None else None
    if job is None or job.status != ExportJob.Status.DONE or path is None:
        raise Http404("no such export file (not finished, expired or not yours)")
    try:
        handle = path.open("rb")
    except FileNotFoundError:  # deleted between the check and the open
        raise Http404("no such export file (expired)") from None
    size = os.fstat(handle.fileno()).st_size
    response = StreamingHttpResponse(
        streamed(request, _file_chunks(handle)), content_type=exports.CONTENT_TYPES[job.fmt]
    )
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = content_disposition_header(True, job.download_name)
    return response


def _file_chunks(handle) -> Iterator[bytes]:
    """The bytes of the open file ``handle`` in chunks of ``DOWNLOAD_CHUNK`` bytes (never
    an empty one, which ``streamed`` reads as the end); closes it at the end or when the
    download is cut short."""
    with handle:
        while chunk := handle.read(DOWNLOAD_CHUNK):
            yield chunk
