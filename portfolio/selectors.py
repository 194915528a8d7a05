"""Read-side queries for the update path, pages and the API (HackSoft-style selectors)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from portfolio.models import (
    Instrument,
    Portfolio,
    PriceBar,
    RebalanceEvent,
    RebalanceRequest,
    Strategy,
    StrategySnapshot,
)


def price_frame(*, end: date | None = None) -> pd.DataFrame:
    """Stored closes as a wide float frame: DatetimeIndex ascending, one column per ticker
    (benchmarks included), NaN where a ticker has no bar."""
    qs = PriceBar.objects.all()
    if end is not None:
        qs = qs.filter(date__lte=end)
    rows = list(qs.values_list("instrument__ticker", "date", "close").iterator(chunk_size=20000))
    if not rows:
        return pd.DataFrame(dtype=float)
    tickers, dates, closes = zip(*rows, strict=True)
    long = pd.DataFrame(
        {
            "ticker": tickers,
            "date": pd.to_datetime(dates),
            "close": np.asarray(closes, dtype=float),
        }
    )
    wide = long.pivot(index="date", columns="ticker", values="close").sort_index()
    wide.columns.name = None
    return wide


def tradable_tickers() -> list[str]:
    return list(
        Instrument.objects.filter(is_benchmark=False)
        .order_by("ticker")
        .values_list("ticker", flat=True)
    )


def multipliers() -> dict[str, float]:
    return {t: float(m) for t, m in Instrument.objects.values_list("ticker", "multiplier")}


def live_portfolios() -> list[Portfolio]:
    return list(Portfolio.objects.filter(is_backtest=False).order_by("id"))


def overview_context() -> dict:
    """The live portfolio's latest snapshot, its strategies, the last rebalance and the
    pending manual requests (5 queries, any size)."""
    portfolio = Portfolio.objects.filter(is_backtest=False).order_by("id").first()
    if portfolio is None:
        return {"portfolio": None}
    snapshot = portfolio.snapshots.order_by("-date").first()
    latest = {}
    if snapshot is not None:
        latest = {
            s.strategy_id: s
            for s in StrategySnapshot.objects.filter(
                strategy__portfolio=portfolio, date=snapshot.date
            )
        }
    last_rebalance = (
        RebalanceEvent.objects.filter(portfolio=portfolio).order_by("-date", "-id").first()
    )
    notes = last_rebalance.notes if last_rebalance else {}
    rows = []
    for s in Strategy.objects.filter(portfolio=portfolio).order_by("position_order"):
        snap = latest.get(s.id)
        in_force = (
            float(s.target_allocation) if s.current_allocation is None else s.current_allocation
        )
        rows.append(
            {
                "strategy": s,
                "snapshot": snap,
                "target_pct": float(s.target_allocation) * 100,
                "allocation_pct": in_force * 100,
                "why": notes.get(s.name, ""),
                "weight_pct": snap.weight * 100 if snap else None,
                "drawdown_pct": snap.drawdown * 100 if snap else None,
            }
        )
    pending = RebalanceRequest.objects.filter(
        portfolio=portfolio, status=RebalanceRequest.Status.PENDING
    ).count()
    context = {
        "portfolio": portfolio,
        "snapshot": snapshot,
        "rows": rows,
        "last_rebalance": last_rebalance,
        "pending_requests": pending,
    }
    if snapshot is not None:
        total_return = float(snapshot.equity) / float(portfolio.initial_capital) - 1
        context.update(
            total_return=total_return,
            total_return_pct=total_return * 100,
            drawdown_pct=snapshot.drawdown * 100,
        )
    return context
