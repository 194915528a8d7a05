"""Dashboard pages: thin edges. Each view finds the live portfolio, calls one page
assembler in ``reporting.pages`` and renders its template."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render

from portfolio.models import Strategy, Trade
from reporting import selectors
from reporting.pages.config import config_page
from reporting.pages.overview import overview_page
from reporting.pages.performance import parse_window, performance_page
from reporting.pages.risk import risk_page
from reporting.pages.strategy import strategy_page

TRADE_CSV_COLUMNS = (
    "date",
    "strategy__name",
    "instrument__ticker",
    "side",
    "quantity",
    "price",
    "value",
    "cost",
    "realized_pnl",
    "reason",
)


def _render(request, template: str, build, **kwargs):
    portfolio = selectors.portfolio_live_get()
    context = {"portfolio": None, "page": template}
    if portfolio is not None:
        context = build(portfolio=portfolio, **kwargs)
    return render(request, f"reporting/{template}.html", context)


@login_required
def overview(request):
    return _render(request, "overview", overview_page)


@login_required
def risk(request):
    return _render(request, "risk", risk_page, params=request.GET)


@login_required
def performance(request):
    return _render(
        request, "performance", performance_page, window=parse_window(request.GET.get("window"))
    )


@login_required
def strategy(request, name: str):
    portfolio = selectors.portfolio_live_get()
    s = get_object_or_404(Strategy, portfolio=portfolio, name=name)
    if request.GET.get("format") == "csv":
        return _trades_csv(s)
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    context = strategy_page(
        portfolio=portfolio, strategy=s, ticker=request.GET.get("ticker", ""), page=page
    )
    return render(request, "reporting/strategy.html", context)


@login_required
def strategy_first(request):
    portfolio = selectors.portfolio_live_get()
    strategies = selectors.strategy_list(portfolio=portfolio) if portfolio else []
    if not strategies:
        return render(request, "reporting/strategy.html", {"portfolio": portfolio})
    return strategy(request, strategies[0].name)


@login_required
def config(request):
    return _render(request, "config", config_page)


@login_required
def status(request):
    """The small JSON the live pages poll or refetch: the last applied date."""
    portfolio = selectors.portfolio_live_get()
    if portfolio is None:
        return JsonResponse({"portfolio": None})
    last = portfolio.last_applied_date
    return JsonResponse(
        {"portfolio": portfolio.id, "last_applied_date": last.isoformat() if last else None}
    )


class _Echo:
    def write(self, value):
        return value


def _trades_csv(strategy: Strategy) -> StreamingHttpResponse:
    """Every fill of the book, oldest first, streamed (one query, chunked)."""
    writer = csv.writer(_Echo())
    rows = (
        Trade.objects.filter(strategy=strategy)
        .order_by("date", "id")
        .values_list(*TRADE_CSV_COLUMNS)
        .iterator(chunk_size=5000)
    )
    header = [c.replace("strategy__name", "strategy").split("__")[-1] for c in TRADE_CSV_COLUMNS]
    lines = (writer.writerow(r) for r in _with_header(header, rows))
    response = StreamingHttpResponse(lines, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="trades-{strategy.name}.csv"'
    return response


def _with_header(header, rows):
    yield header
    yield from rows
