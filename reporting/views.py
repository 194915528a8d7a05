"""Dashboard pages: thin edges. Each view finds the live portfolio, calls one page
assembler in ``reporting.pages`` and renders its template."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render

from portfolio.models import Strategy
from reporting import exports, selectors
from reporting.pages.config import config_page
from reporting.pages.overview import overview_page
from reporting.pages.performance import parse_window, performance_page
from reporting.pages.risk import risk_page
from reporting.pages.strategy import strategy_page


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
        return _trades_csv(portfolio, s)
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


def _trades_csv(portfolio, strategy: Strategy) -> StreamingHttpResponse:
    """Every fill of the book, oldest first: the trades export (``reporting.exports``) of
    this one strategy, streamed in pieces."""
    frame = exports.trades_frame(portfolio, strategy=strategy)
    response = StreamingHttpResponse(exports.csv_chunks(frame), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="trades-{strategy.name}.csv"'
    return response
