"""Dashboard pages: thin edges. Each view finds the portfolio to show, calls one page
assembler in ``reporting.pages`` and renders its template.

The portfolio shown is the live one unless the user picked another (a backtest, say) with
the header's selector: ``?portfolio=<id>`` shows it and remembers it for the session,
``?portfolio=live`` goes back to the live portfolio."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from portfolio.engine.errors import ConfigError
from portfolio.models import PendingOrder, Strategy
from portfolio.selectors import price_staleness_get
from portfolio.services.approvals import order_review
from portfolio.services.controls import Origin
from portfolio.services.live import state_version_of
from reporting import exports, selectors
from reporting.export_views import streamed
from reporting.fragments import page_main, page_parts
from reporting.pages.common import finite
from reporting.pages.config import config_page
from reporting.pages.overview import overview_page
from reporting.pages.params import MAX_PAGE, QueryError, is_id, query_int
from reporting.pages.performance import parse_section, parse_window, performance_page
from reporting.pages.risk import risk_page
from reporting.pages.strategy import strategy_page
from reporting.services.notes import NoteError, note_save

SESSION_KEY = "dashboard_portfolio"


class _BadChoice(Exception):
    pass


def _shown(request):
    """The portfolio this request shows (module docstring)."""
    raw = request.GET.get("portfolio")
    if raw is None:
        return selectors.portfolio_shown_get(pk=request.session.get(SESSION_KEY))
    if raw == "live":
        request.session.pop(SESSION_KEY, None)
        return selectors.portfolio_live_get()
    if not is_id(raw):
        raise _BadChoice("portfolio must be a portfolio id (a positive integer) or 'live'")
    portfolio = selectors.portfolio_shown_get(pk=int(raw))
    if portfolio is None or portfolio.pk != int(raw):
        raise Http404(f"no portfolio with id {raw}")
    request.session[SESSION_KEY] = portfolio.pk
    return portfolio


def _page(request, template: str, context: dict):
    portfolio = context.get("portfolio")
    context = {
        "portfolio_choices": selectors.portfolio_choices(),
        "price_staleness": price_staleness_get(),
        "live_version": state_version_of(portfolio) if portfolio else 0,
        **context,
    }
    if request.GET.get("format") == "json":
        return _page_json(request, template, context)
    return render(request, f"reporting/{template}.html", context)


def _page_json(request, template: str, context: dict) -> JsonResponse:
    """The page as the live page applies it in place: the same assembler's context
    rendered by the same template, cut into its marked fragments and figures
    (``reporting.fragments``), with the version and the as-of bar's activity for the
    notice. The configuration page sends only what it marks (its forms stay put).
    ``?whole=1`` adds the whole ``<main>``, for a page whose structure changed."""
    html = render_to_string(f"reporting/{template}.html", context, request=request)
    fragments, figures = page_parts(html, tables=template != "config")
    portfolio = context.get("portfolio")
    as_of = context.get("as_of") or (portfolio.last_applied_date if portfolio else None)
    numbers = {
        k: finite(v) if isinstance(v, float) else v
        for k, v in (context.get("metrics") or {}).items()
        if v is None or isinstance(v, int | float | str)
    }
    whole = {"main": page_main(html)} if request.GET.get("whole") else {}
    bar = None
    if portfolio is not None and as_of is not None:
        bar = {
            "date": as_of.isoformat(),
            **selectors.bar_activity_counts(portfolio=portfolio, on=as_of),
        }
    return JsonResponse(
        {
            "page": template,
            "portfolio": portfolio.id if portfolio else None,
            "version": context["live_version"],
            "as_of": as_of.isoformat() if as_of else None,
            "bar": bar,
            "numbers": numbers,
            "fragments": fragments,
            "figures": figures,
            **whole,
        }
    )


def _render(request, template: str, build, **kwargs):
    try:
        portfolio = _shown(request)
        context = {"portfolio": None, "page": template}
        if portfolio is not None:
            context = build(portfolio=portfolio, **kwargs)
    except (_BadChoice, QueryError) as exc:  # QueryError: the risk page reads its filters
        return _bad_request(exc)
    return _page(request, template, context)


def _bad_request(exc: Exception) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")


@login_required
def overview(request):
    return _render(request, "overview", overview_page)


@login_required
def risk(request):
    return _render(request, "risk", risk_page, params=request.GET)


@login_required
def performance(request):
    try:
        window = parse_window(request.GET.get("window"))
    except QueryError as exc:
        return _bad_request(exc)
    section = parse_section(request.GET.get("section"))
    return _render(request, "performance", performance_page, window=window, section=section)


@login_required
def strategy(request, name: str):
    try:
        portfolio = _shown(request)
    except _BadChoice as exc:
        return HttpResponseBadRequest(str(exc))
    s = get_object_or_404(Strategy, portfolio=portfolio, name=name)
    if request.GET.get("format") == "csv":
        return _trades_csv(request, portfolio, s)
    try:
        page = query_int(request.GET, "page", default=1, minimum=1, maximum=MAX_PAGE)
    except QueryError as exc:
        return _bad_request(exc)
    context = strategy_page(
        portfolio=portfolio, strategy=s, ticker=request.GET.get("ticker", ""), page=page
    )
    return _page(request, "strategy", context)


@staff_member_required
@require_POST
def strategy_note(request, name: str):
    """Staff add, edit or clear (empty text and tags) the note on one of the shown
    strategy's trades (``trade``) or positions (``ticker``); back to the strategy page."""
    try:
        portfolio = _shown(request)
    except _BadChoice as exc:
        return HttpResponseBadRequest(str(exc))
    s = get_object_or_404(Strategy, portfolio=portfolio, name=name)
    raw_trade = request.POST.get("trade", "")
    if raw_trade and not is_id(raw_trade):
        return HttpResponseBadRequest("trade must be a trade id")
    try:
        note_save(
            strategy=s,
            trade_id=int(raw_trade) if raw_trade else None,
            ticker=request.POST.get("ticker", ""),
            text=request.POST.get("text", ""),
            tags=request.POST.get("tags", ""),
            author=request.user.get_username(),
        )
    except NoteError as exc:
        return HttpResponseBadRequest(f"note not saved: {exc}")
    anchor = "#trades" if raw_trade else "#positions"
    page = request.POST.get("page", "")
    query = f"?page={page}" if is_id(page) else ""
    return redirect(f"{request.path.rsplit('notes/', 1)[0]}{query}{anchor}")


@staff_member_required
@require_POST
def strategy_order_review(request, name: str, pk: int):
    """Staff approve or reject (``decision``) the orders awaiting a review on the strategy
    page (trade approval), with an optional note; back to the strategy page."""
    try:
        portfolio = _shown(request)
    except _BadChoice as exc:
        return HttpResponseBadRequest(str(exc))
    s = get_object_or_404(Strategy, portfolio=portfolio, name=name)
    get_object_or_404(PendingOrder, strategy=s, pk=pk)
    try:
        order = order_review(
            order_id=pk,
            decision=request.POST.get("decision", ""),
            origin=Origin.of_request(request, source="page"),
            note=request.POST.get("note", ""),
        )
    except ConfigError as exc:
        messages.error(request, f"Refused, nothing changed: {exc.where}: {exc.rule}")
    else:
        verb = "approved: they fill" if order.status == "approved" else "rejected: nothing fills"
        messages.success(request, f"orders of {order.decided_on} {verb} at the next bar")
    return redirect(f"{request.path.rsplit('orders/', 1)[0]}#orders")


@login_required
def strategy_first(request):
    try:
        portfolio = _shown(request)
    except _BadChoice as exc:
        return HttpResponseBadRequest(str(exc))
    strategies = selectors.strategy_list(portfolio=portfolio) if portfolio else []
    if not strategies:
        return _page(request, "strategy", {"portfolio": portfolio})
    chosen = request.GET.get("strategy")
    if chosen:  # the selector's GET form (no JavaScript needed)
        s = get_object_or_404(Strategy, portfolio=portfolio, name=chosen)
        return redirect("reporting:strategy", s.name)
    return strategy(request, strategies[0].name)


@login_required
def config(request):
    return _render(request, "config", config_page)


def status(request):
    """The small JSON the live pages poll or refetch: the last applied date. Anonymous
    callers get a 401 JSON answer, not a redirect to the login page."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
    portfolio = selectors.portfolio_live_get()
    if portfolio is None:
        return JsonResponse({"portfolio": None})
    last = portfolio.last_applied_date
    return JsonResponse(
        {"portfolio": portfolio.id, "last_applied_date": last.isoformat() if last else None}
    )


def _trades_csv(request, portfolio, strategy: Strategy) -> StreamingHttpResponse:
    """Every fill of the book, oldest first: the trades export (``reporting.exports``) of
    this one strategy, read and written piece by piece (``exports.trades_frames``, one
    query a piece) while it is sent, so neither the request nor memory grows with the
    number of fills."""
    chunks = exports.csv_chunks(exports.trades_frames(portfolio, strategy=strategy))
    response = StreamingHttpResponse(streamed(request, chunks), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="trades-{strategy.name}.csv"'
    return response
