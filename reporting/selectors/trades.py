"""Fills (as a frame, in pages of a frame, as lists), rebalance events and requests,
orders held for approval, and the last signal fill's sizing per ticker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from django.db.models import Max, Q, QuerySet, Subquery

from portfolio.models import (
    PendingOrder,
    Portfolio,
    RebalanceEvent,
    RebalanceRequest,
    Strategy,
    Trade,
)
from reporting.selectors.common import _frame

TRADE_FIELDS = (
    "id",
    "strategy__name",
    "instrument__ticker",
    "date",
    "side",
    "quantity",
    "price",
    "value",
    "cost",
    "realized_pnl",
    "reason",
)
BRIEF_TRADE_FIELDS = (
    "strategy__name",
    "instrument__ticker",
    "date",
    "side",
    "quantity",
    "realized_pnl",
)


def _trade_query(
    portfolio: Portfolio, strategy: Strategy | None, brief: bool, detail: bool
) -> tuple[QuerySet[Trade], list[str], list[str]]:
    """The fills of ``trade_frame`` in execution order, the values_list fields, and the
    frame's column names (one definition for the whole read and the paged one)."""
    qs = Trade.objects.filter(strategy__portfolio=portfolio)
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    fields = [f for f in TRADE_FIELDS if not brief or f in BRIEF_TRADE_FIELDS]
    fields += ["detail"] if detail else []
    columns = [
        {"strategy__name": "strategy", "instrument__ticker": "ticker"}.get(f, f) for f in fields
    ]
    return qs.order_by("date", "id"), fields, columns


_TRADE_FLOATS = ("quantity", "price", "value", "cost", "realized_pnl")


def trade_frame(
    *,
    portfolio: Portfolio,
    strategy: Strategy | None = None,
    brief: bool = False,
    detail: bool = False,
) -> pd.DataFrame:
    """Every fill (1 query), in execution order: columns id, strategy, ticker, date, side,
    quantity, price, value, cost, realized_pnl (floats), reason, and with ``detail`` the
    fill's detail text (the exports). ``brief`` reads only strategy, ticker, date, side,
    quantity and realized_pnl (what round trips need: on 90k fills, every Decimal column
    read costs a noticeable fraction of a second)."""
    qs, fields, columns = _trade_query(portfolio, strategy, brief, detail)
    rows = list(qs.values_list(*fields).iterator(chunk_size=20000))
    return _frame(rows, columns, floats=tuple(c for c in _TRADE_FLOATS if c in columns))


def trade_frame_pages(
    *,
    portfolio: Portfolio,
    strategy: Strategy | None = None,
    detail: bool = False,
    rows: int = 5000,
) -> Iterator[pd.DataFrame]:
    """``trade_frame`` (not ``brief``) in pages of at most ``rows`` fills, in the same
    order and with the same columns: memory bounded by a page, whatever the number of
    fills. One query a page, keyset on (date, id): no cursor stays open between pages (a
    slow download holds no read on the database), and a page costs the same wherever it
    starts. Fills written while the pages are read are included when they come after the
    page last read (an update's new bars), not otherwise. At least one frame (empty when
    there are no fills)."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    qs, fields, columns = _trade_query(portfolio, strategy, False, detail)
    floats = tuple(c for c in _TRADE_FLOATS if c in columns)
    at_date = fields.index("date")
    page = list(qs.values_list(*fields)[:rows])
    yield _frame(page, columns, floats=floats)
    while len(page) == rows:
        last_date, last_id = page[-1][at_date], page[-1][0]
        # (date, id) > (last_date, last_id); the date__gte half lets the (strategy, date)
        # index skip the rows already read instead of sorting every fill for each page
        after = Q(date__gt=last_date) | Q(id__gt=last_id)
        page = list(qs.filter(after, date__gte=last_date).values_list(*fields)[:rows])
        if page:
            yield _frame(page, columns, floats=floats)


def trade_recent_list(*, portfolio: Portfolio, limit: int = 20) -> list[Trade]:
    """The latest ``limit`` fills, newest first (1 query)."""
    return list(
        Trade.objects.filter(strategy__portfolio=portfolio)
        .select_related("strategy", "instrument")
        .order_by("-date", "-id")[:limit]
    )


def trade_page_list(*, strategy: Strategy, offset: int, limit: int) -> list[Trade]:
    """One page of a strategy's fills, newest first (1 query)."""
    return list(
        Trade.objects.filter(strategy=strategy)
        .select_related("instrument")
        .order_by("-date", "-id")[offset : offset + limit]
    )


def rebalance_event_frame(*, portfolio: Portfolio) -> pd.DataFrame:
    """Every RebalanceEvent (1 query): date, trigger, method, capital_moved, trades_count."""
    rows = list(
        RebalanceEvent.objects.filter(portfolio=portfolio)
        .order_by("date", "id")
        .values_list("date", "trigger", "method", "capital_moved", "trades_count")
    )
    columns = ["date", "trigger", "method", "capital_moved", "trades_count"]
    return _frame(rows, columns, floats=("capital_moved",))


def rebalance_event_list(*, portfolio: Portfolio, limit: int) -> list[RebalanceEvent]:
    """The latest ``limit`` rebalances, newest first (1 query)."""
    return list(RebalanceEvent.objects.filter(portfolio=portfolio).order_by("-date", "-id")[:limit])


def rebalance_request_list(
    *, portfolio: Portfolio, limit: int, pending_only: bool = False
) -> list[RebalanceRequest]:
    """Manual rebalance requests, newest first (1 query)."""
    qs = RebalanceRequest.objects.filter(portfolio=portfolio)
    if pending_only:
        qs = qs.filter(status=RebalanceRequest.Status.PENDING)
    return list(qs.select_related("event").order_by("-requested_at", "-id")[:limit])


def rebalance_request_pending_count(*, portfolio: Portfolio) -> int:
    """Manual requests waiting for the next bar (1 query)."""
    return RebalanceRequest.objects.filter(
        portfolio=portfolio, status=RebalanceRequest.Status.PENDING
    ).count()


def order_list(*, strategy: Strategy, limit: int) -> list[PendingOrder]:
    """The strategy's latest decisions held for approval (trade approval), newest first:
    the one awaiting a review, if any, and the outcomes of the earlier ones."""
    return list(PendingOrder.objects.filter(strategy=strategy).order_by("-decided_on")[:limit])


def signal_trade_sizing_map(*, strategy: Strategy, tickers: list[str]) -> dict[str, dict]:
    """ticker -> the last signal fill of ``strategy`` in it: date, signed quantity, price
    and the ``sizing`` the update path stored with it (``Trade.sizing``; None on fills
    written before it existed), for ``tickers`` (1 query). The last is the highest id: the
    update path inserts fills in date order."""
    mine = Trade.objects.filter(
        strategy=strategy, reason=Trade.Reason.SIGNAL, instrument__ticker__in=tickers
    )
    last = mine.order_by().values("instrument").annotate(last=Max("id")).values("last")
    rows = Trade.objects.filter(id__in=Subquery(last)).values_list(
        "instrument__ticker", "date", "side", "quantity", "price", "sizing"
    )
    return {
        ticker: {
            "date": day,
            "quantity": (1.0 if side == Trade.Side.BUY else -1.0) * float(quantity),
            "price": float(price),
            "sizing": sizing or None,
        }
        for ticker, day, side, quantity, price, sizing in rows
    }
