"""Portfolio and strategy lookups (the live portfolio, the one a page shows, the choices),
the committed-state stamp a page caches on, and the per-table row counts of an export.
"""

from __future__ import annotations

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from portfolio import selectors as portfolio_selectors
from portfolio.models import Portfolio, PortfolioSnapshot, Position, StateVersion, Strategy, Trade
from risk.models import Violation


def _live_portfolios() -> QuerySet[Portfolio]:
    """The live-portfolio rule, written once: the live portfolio is the first of
    ``portfolio.selectors.live_portfolio_queryset`` (the first non-backtest portfolio
    created). Pages, exports, the API and the commands all default to it through
    ``portfolio_live_get``, ``portfolio_get`` or ``live_portfolio_id_subquery``."""
    return portfolio_selectors.live_portfolio_queryset()


def portfolio_live_get() -> Portfolio | None:
    """The live (not backtest) portfolio the dashboard shows (``_live_portfolios``)."""
    return _live_portfolios().select_related("state_version").first()


def portfolio_get(*, pk: int | None = None, name: str | None = None) -> Portfolio | None:
    """A portfolio by id, else by name, else (neither given) the live one (1 query).
    None when there is no such portfolio: unlike ``portfolio_shown_get``, an unknown id
    or name never falls back to the live portfolio."""
    if pk is not None:
        return Portfolio.objects.filter(pk=pk).select_related("state_version").first()
    if name is not None:
        return Portfolio.objects.filter(name=name).select_related("state_version").first()
    return portfolio_live_get()


def portfolio_shown_get(*, pk: int | None) -> Portfolio | None:
    """The portfolio the dashboard shows: the one with id ``pk`` (a live or a backtest
    portfolio) when it exists, else the live one (1 query)."""
    chosen = portfolio_get(pk=pk) if pk is not None else None
    return chosen if chosen is not None else portfolio_live_get()


def portfolio_choices() -> list[dict]:
    """Every portfolio the dashboard can show, the live ones first (by id), then the
    backtests by name: ``{"id", "name", "is_backtest"}`` (1 query)."""
    rows = Portfolio.objects.order_by("is_backtest", "id").values("id", "name", "is_backtest")
    live = [r for r in rows if not r["is_backtest"]]
    return live + sorted((r for r in rows if r["is_backtest"]), key=lambda r: r["name"])


def strategy_list(*, portfolio: Portfolio) -> list[Strategy]:
    """The portfolio's strategies in display order (1 query)."""
    return list(portfolio.strategies.order_by("position_order", "name"))


def live_portfolio_id_subquery() -> Subquery:
    """The live portfolio's id (``portfolio_live_get``'s rule: the first non-backtest
    one) as a subquery, so defaulting to it costs no query of its own."""
    return Subquery(_live_portfolios().values("id")[:1])


def _count_of(queryset: QuerySet, outer: str) -> Coalesce:
    """The number of rows of ``queryset`` whose ``outer`` is the outer portfolio's id, as
    a subquery expression (0 when none)."""
    counted = (
        queryset.filter(**{outer: OuterRef("pk")})
        .order_by()
        .values(outer)
        .annotate(n=Count("id"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted), 0)


def portfolio_row_counts(*, portfolio: Portfolio) -> dict[str, int]:
    """How many rows each export table of ``portfolio`` holds (1 query): equity and risk
    (one a snapshot), trades, positions and violations."""
    counts = (
        Portfolio.objects.filter(pk=portfolio.pk)
        .annotate(
            n_snapshots=_count_of(PortfolioSnapshot.objects, "portfolio"),
            n_trades=_count_of(Trade.objects, "strategy__portfolio"),
            n_positions=_count_of(Position.objects, "strategy__portfolio"),
            n_violations=_count_of(Violation.objects, "portfolio"),
        )
        .values_list("n_snapshots", "n_trades", "n_positions", "n_violations")
        .first()
    ) or (0, 0, 0, 0)
    snapshots, trades, positions, violations = counts
    return {
        "equity": snapshots,
        "trades": trades,
        "positions": positions,
        "risk": snapshots,
        "violations": violations,
    }


def state_stamp_get(*, portfolio: Portfolio) -> tuple[int, object] | None:
    """The portfolio's committed state as ``(version, committed_at)``, or None before its
    first commit: no query when the portfolio was loaded with
    ``select_related("state_version")`` (as ``portfolio_shown_get`` does), else 1."""
    cached = portfolio._state.fields_cache
    if "state_version" in cached:
        row = cached["state_version"]
        return None if row is None else (row.version, row.committed_at)
    rows = StateVersion.objects.filter(portfolio=portfolio).values_list("version", "committed_at")
    return rows.first()
