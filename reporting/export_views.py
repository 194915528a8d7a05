"""Download views: ``/export/<table>.<csv|xlsx>`` and ``/export/all.xlsx`` (login required).

``?portfolio=<id>`` picks the portfolio; without it, the live portfolio (the first
non-backtest one by id). The tables and writers live in ``reporting.exports``.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.views.decorators.http import require_GET

from reporting import exports, selectors
from reporting.pages.params import is_id


def _response(request, table: str, fmt: str) -> HttpResponse:
    raw = request.GET.get("portfolio")
    if raw is not None and not is_id(raw):
        return HttpResponseBadRequest("portfolio must be a portfolio id (a positive integer)")
    portfolio = selectors.portfolio_get(pk=int(raw) if raw is not None else None)
    if portfolio is None:
        raise Http404("no such portfolio" if raw is not None else "no live portfolio yet")
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
