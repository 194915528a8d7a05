"""Positions: the long frame of every strategy's holdings by date."""

from __future__ import annotations

from datetime import date

import pandas as pd
from django.db.models import OuterRef, Subquery

from portfolio.models import Portfolio, Position, PriceBar, Strategy
from reporting.selectors.common import _frame


def position_frame(
    *, portfolio: Portfolio, as_of: date | None, strategy: Strategy | None = None
) -> pd.DataFrame:
    """Open positions (1 query) with each instrument's last close on or before ``as_of``:
    columns strategy, ticker, sector, quantity, avg_entry_price, entry_date, multiplier,
    close, asset_class, value (= quantity x close x multiplier, signed), unrealized_pnl
    (= quantity x (close - avg entry) x multiplier)."""
    last_close = PriceBar.objects.filter(instrument=OuterRef("instrument"))
    if as_of is not None:
        last_close = last_close.filter(date__lte=as_of)
    qs = Position.objects.filter(strategy__portfolio=portfolio)
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    rows = list(
        qs.annotate(close=Subquery(last_close.order_by("-date").values("close")[:1]))
        .order_by("strategy__position_order", "strategy_id", "instrument__ticker")
        .values_list(
            "strategy__name",
            "instrument__ticker",
            "instrument__sector",
            "quantity",
            "avg_entry_price",
            "entry_date",
            "instrument__multiplier",
            "close",
            "instrument__asset_class",
        )
    )
    columns = [
        "strategy",
        "ticker",
        "sector",
        "quantity",
        "avg_entry_price",
        "entry_date",
        "multiplier",
        "close",
        "asset_class",
    ]
    frame = _frame(rows, columns, floats=("quantity", "avg_entry_price", "multiplier", "close"))
    frame["entry_date"] = pd.to_datetime(frame["entry_date"])
    frame["value"] = frame["quantity"] * frame["close"] * frame["multiplier"]
    frame["unrealized_pnl"] = (
        frame["quantity"] * (frame["close"] - frame["avg_entry_price"]) * frame["multiplier"]
    )
    return frame
