"""Page 4, one strategy: a selector over the portfolio's strategies, every statistic of its
flow-free returns, equity with its fills, a ticker's signal against its entry/exit rules
with the book's buys and sells, violations, positions with their sizing rationale
(``strategy_panels``) and trades."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd

from portfolio.engine.sizing import risk_config_from_dict
from portfolio.models import Portfolio, Strategy
from portfolio.services.books import strategy_execution
from reporting import charts, selectors
from reporting.engine.performance import performance_stats
from reporting.engine.trades import round_trips
from reporting.pages import strategy_panels
from reporting.pages.common import (
    finite,
    in_force_allocation,
    row_stamp,
    shown,
    state_cached,
    stored_html,
)
from risk.engine.metrics import average_trade_pnl, max_adverse_excursion, win_rate

TRADES_PER_PAGE = 100
TABS_UP_TO = 6  # more strategies than this: a dropdown selector instead of tabs
VIOLATIONS_SHOWN = 50
ORDERS_SHOWN = 10

# What each statistic is (performance.py's docstrings, in a line each).
STAT_DEFINITIONS = {
    "n_days": ("Days", "number of daily returns (bar dates after the funding day)", ",d"),
    "total_return": ("Total return", "prod(1 + r) - 1", "%"),
    "annual_return": ("Annual return", "prod(1 + r)^(252/n) - 1 (geometric)", "%"),
    "annual_volatility": ("Annual volatility", "std(r, ddof=1) x sqrt(252)", "%"),
    "sharpe_ratio": ("Sharpe ratio", "mean(r - rf/252) / std x sqrt(252), rf = 0", "f"),
    "sortino_ratio": ("Sortino ratio", "mean excess x 252 / downside deviation", "f"),
    "calmar_ratio": ("Calmar ratio", "annual return / |max drawdown|", "f"),
    "max_drawdown": ("Max drawdown", "min of prod(1 + r) / running peak - 1", "%"),
    "max_drawdown_duration_days": ("Longest drawdown", "trading days peak to recovery", ",d"),
    "win_rate": ("Win rate (days)", "#(r > 0) / #(r != 0)", "%"),
    "profit_factor": ("Profit factor (days)", "sum of gains / |sum of losses|", "f"),
    "best_day": ("Best day", "max daily return", "%"),
    "worst_day": ("Worst day", "min daily return", "%"),
    "best_month": ("Best month", "max calendar-month return", "%"),
    "worst_month": ("Worst month", "min calendar-month return", "%"),
    "skew": ("Skew", "adjusted Fisher-Pearson G1", "f"),
    "excess_kurtosis": ("Excess kurtosis", "bias-corrected G2 (normal = 0)", "f"),
}


def strategy_page(*, portfolio: Portfolio, strategy: Strategy, ticker: str, page: int) -> dict:
    """Context of one strategy's page (a fixed number of queries). What comes from the
    stored rows alone (statistics, charts, positions with their sizing, trade risk) is
    computed once per committed state (``state_cached``, stamped with the strategy's and
    the portfolio's configuration rows and the chosen ticker); what an operator changes
    between updates (the violations' reviews, the trade approvals, the notes) is read on
    every request."""
    strategies = selectors.strategy_list(portfolio=portfolio)
    stored = state_cached(
        portfolio=portfolio,
        name=f"strategy:{strategy.pk}:{ticker[:40]}",
        depends=(row_stamp(portfolio), row_stamp(strategy)),
        build=lambda: stored_html(
            _stored_context(portfolio, strategy, ticker),
            {"top": "strategy_top", "sizing": "strategy_sizing"},
            portfolio=portfolio,
            strategy=strategy,
        ),
    )
    context = {
        "portfolio": portfolio,
        "strategy": strategy,
        "strategies": strategies,
        "selector": "tabs" if len(strategies) <= TABS_UP_TO else "dropdown",
        "static": float(strategy.target_allocation),
        "in_force": in_force_allocation(strategy),
        "violations": selectors.violation_list(
            portfolio=portfolio, strategy_name=strategy.name, limit=VIOLATIONS_SHOWN
        ),
        **stored,
    }
    context.update(_orders(portfolio, strategy))
    notes = selectors.note_map(strategy=strategy)
    context.update(_trade_page(strategy, stored["trade_count"], page))
    for t in context["trades"]:
        t.annotation = notes.get(("trade", t.id))
    for p in context.get("positions", []):
        p["note"] = notes.get(("position", p["ticker"]))
    return context


def _stored_context(portfolio: Portfolio, strategy: Strategy, ticker: str) -> dict:
    """The part of the page that is a function of the stored rows and the configuration."""
    snaps = selectors.strategy_history_frame(portfolio=portfolio, strategy=strategy)
    fills = selectors.trade_frame(portfolio=portfolio, strategy=strategy)
    as_of = None if snaps.empty else snaps["date"].iloc[-1].date()
    context = {"as_of": as_of, "trade_count": len(fills), "figures": {}}
    if snaps.empty:
        return context
    returns = selectors.strategy_return_frame(snaps, [strategy.name])[strategy.name].dropna()
    equity = snaps.set_index("date")["equity"]
    if len(returns):  # the funding day alone has no return
        stats = performance_stats(returns)
        context["stats"] = [
            {
                "label": label,
                "definition": definition,
                "value": shown(getattr(stats, key)),
                "fmt": fmt,
            }
            for key, (label, definition, fmt) in STAT_DEFINITIONS.items()
        ]
    context["latest"] = snaps.iloc[-1].to_dict()
    context["figures"]["equity"] = _equity_figure(equity, fills, strategy.name)
    context["positions"] = _positions(portfolio, strategy, as_of, fills)
    # One read of the update path's closes serves the signal, the sizing and the MAE.
    closes = strategy_panels.universe_closes(as_of=as_of)
    context.update(
        _signal_and_sizing(portfolio, strategy, as_of, fills, ticker, context, snaps, closes)
    )
    context["trade_risk"] = _trade_risk(fills, as_of, closes)
    return context


def _signal_and_sizing(portfolio, strategy, as_of, fills, ticker, context, snaps, closes) -> dict:
    """The signal overlay of the chosen ticker (default the most traded) and the sizing
    rationale of the open positions, both on ``closes`` (``universe_closes``)."""
    signal = strategy_panels.strategy_signal(strategy)
    out: dict = {
        "signal_rule": inspect.cleandoc(type(signal).__doc__ or ""),
        "risk": risk_config_from_dict(strategy.risk_config),
    }
    tickers = sorted(fills["ticker"].unique()) if len(fills) else []
    if tickers:
        chosen = ticker if ticker in tickers else fills["ticker"].value_counts().idxmax()
        out["tickers"], out["ticker"] = tickers, chosen
        if chosen in closes.columns:
            # Per-column indicators need only the chosen ticker's own closes.
            own = closes if signal.cross_sectional else closes[[chosen]]
            frame = strategy_panels.signal_frame(signal, own, chosen)
            markers = _fill_markers(fills[fills["ticker"] == chosen], None)
            figure = strategy_panels.signal_figure(signal, frame, closes.shape[1], markers, chosen)
            out["figures"] = {**context["figures"], "signal": figure}
    out["sizing"] = strategy_panels.sizing_rationale(
        strategy=strategy,
        closes=closes,
        positions=context["positions"],
        bar_dates=pd.DatetimeIndex(snaps["date"]),
        whole_shares=strategy_execution(portfolio, strategy).whole_shares,
    )
    return out


def _orders(portfolio: Portfolio, strategy: Strategy) -> dict:
    """Trade approval: the decision awaiting a review (decided at the last applied bar,
    still pending or approved) with its orders valued at that close, and the history."""
    orders = selectors.order_list(strategy=strategy, limit=ORDERS_SHOWN)
    awaiting = next(
        (
            o
            for o in orders
            if o.decided_on == portfolio.last_applied_date and o.resolved_on is None
        ),
        None,
    )
    if awaiting is not None:
        for line in awaiting.orders:
            line["value"] = line["quantity"] * line["price"]
    return {"orders": orders, "awaiting": awaiting}


MAE_TRADES = 500  # the most recent round trips whose adverse excursion is measured


def _trade_risk(fills: pd.DataFrame, as_of, closes: pd.DataFrame | None = None) -> dict | None:
    """Closed round trips (``engine.trades.round_trips``): win rate and average P&L per
    trade (``risk.engine.metrics``: zero-P&L closes excluded), and the maximum adverse
    excursion of the last 500 (``_trip_mae``: the worst close against the position from
    the first lot's entry date through the exit, as a fraction of the cost basis).
    ``closes``: wide, through ``as_of`` (``strategy_panels.universe_closes``, read when
    not given)."""
    if fills.empty:
        return None
    trips = round_trips(fills)
    if trips.empty:
        return None
    recent = trips.tail(MAE_TRADES)
    if closes is None:
        closes = strategy_panels.universe_closes(as_of=as_of)
    own = {t: closes[t].dropna() for t in recent["ticker"].unique() if t in closes.columns}
    maes = []
    for row in recent.itertuples(index=False):
        mae = _trip_mae(row, own.get(row.ticker))
        if mae is not None:
            maes.append((row, mae))
    pnl = trips["realized_pnl"].to_numpy(dtype=float)
    values = [m for _, m in maes]
    return {
        "count": len(trips),
        "win_rate": finite(win_rate(pnl)),
        "average_pnl": finite(average_trade_pnl(pnl)),
        "mae_count": len(values),
        "mae_mean": finite(float(np.mean(values))) if values else None,
        "mae_worst": finite(float(np.max(values))) if values else None,
        "recent": [_recent_trip(r, m) for r, m in maes[-20:][::-1]],
    }


def _trip_mae(row, series: pd.Series | None) -> float | None:
    """``max_adverse_excursion`` of one round trip on its ticker's closes: from
    ``first_entry_date`` (the earliest lot it closed) through ``exit_date``, against
    ``entry_price`` (the cost basis: quantity-weighted fill prices incl. slippage of the
    lot parts closed). Without a price (``brief`` fills) it falls back to the close on
    the first bar at or after the synthetic ``entry_date``, from that bar. The side is
    the round trip's own (the lots its closing fill closed), so a long sold and bought
    back on one date is still measured as a long. None when no close falls in the span."""
    if series is None:
        return None
    priced = np.isfinite(row.entry_price) and row.entry_price > 0
    at = series.index.searchsorted(row.first_entry_date if priced else row.entry_date)
    if at >= len(series) or series.index[at] > row.exit_date:
        return None
    return max_adverse_excursion(
        series,
        entry_date=series.index[at],
        exit_date=row.exit_date,
        side=int(row.side),
        entry_price=float(row.entry_price) if priced else float(series.iloc[at]),
    )


def _recent_trip(row, mae: float) -> dict:
    """One row of the recent-trips table (entry: the first lot's date)."""
    return {
        "ticker": row.ticker,
        "entry": row.first_entry_date.date(),
        "exit": row.exit_date.date(),
        "entry_price": finite(float(row.entry_price)),
        "pnl": float(row.realized_pnl),
        "mae": mae,
    }


def _trade_page(strategy: Strategy, n_fills: int, page: int) -> dict:
    pages = max((n_fills + TRADES_PER_PAGE - 1) // TRADES_PER_PAGE, 1)
    page = min(max(page, 1), pages)
    trades = selectors.trade_page_list(
        strategy=strategy, offset=(page - 1) * TRADES_PER_PAGE, limit=TRADES_PER_PAGE
    )
    return {"trades": trades, "trade_count": n_fills, "page": page, "pages": pages}


def _fill_markers(fills: pd.DataFrame, y_by_date: pd.Series | None) -> list[dict]:
    """Buy and sell markers, one per date, every fill of that date in the hover (up to 4).
    y: ``y_by_date`` on that date (the equity curve), or the mean fill price when None.
    Only the hover texts of the ``charts.MAX_MARKERS`` most recent dates, the ones the
    chart draws, are built (the others are empty)."""
    markers = []
    for side, name, symbol, color in (
        ("buy", "Buys", "triangle-up", "#067647"),
        ("sell", "Sells", "triangle-down", "#b42318"),
    ):
        f = fills[fills["side"] == side]
        if f.empty:
            continue
        dates = pd.DatetimeIndex(f["date"].unique()).sort_values()
        shown = f[f["date"] >= dates[max(len(dates) - charts.MAX_MARKERS, 0)]]
        text = [""] * (len(dates) - shown["date"].nunique()) + _hover_texts(shown)
        if y_by_date is None:
            y = f.groupby("date")["price"].mean().reindex(dates)
        else:
            y = y_by_date.reindex(y_by_date.index.union(dates)).ffill().reindex(dates)
        markers.append(
            {
                "name": name,
                "dates": dates,
                "y": y.to_numpy(),
                "text": text,
                "symbol": symbol,
                "color": color,
            }
        )
    return markers


def _hover_texts(f: pd.DataFrame) -> list[str]:
    """One hover text per date of ``f`` (sorted by date): its first 4 fills, then how
    many more."""
    lines = (
        f["side"]
        + " "
        + f["quantity"].map("{:,.2f}".format)
        + " "
        + f["ticker"]
        + " @ "
        + f["price"].map("{:,.2f}".format)
        + " ("
        + f["reason"]
        + ")"
    ).tolist()
    day = f["date"].to_numpy()
    starts = [0, *(i for i in range(1, len(day)) if day[i] != day[i - 1]), len(day)]
    out = []
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        more = f"<br>+{b - a - 4} more" if b - a > 4 else ""
        out.append("<br>".join(lines[a : min(b, a + 4)]) + more)
    return out


def _equity_figure(equity: pd.Series, fills: pd.DataFrame, name: str) -> dict:
    markers = _fill_markers(fills, equity) if len(fills) else []
    return charts.markers_figure(equity, name, markers, "Equity with the book's fills")


def _positions(portfolio, strategy, as_of, fills: pd.DataFrame) -> list[dict]:
    """Open positions with price, P&L, hold time (days since the position's entry date)
    and the reason of the last fill in that ticker (the sizing reason the book records)."""
    positions = selectors.position_frame(portfolio=portfolio, as_of=as_of, strategy=strategy)
    last_reason = fills.groupby("ticker")["reason"].last() if len(fills) else pd.Series()
    rows = []
    for p in positions.itertuples():
        rows.append(
            {
                "ticker": p.ticker,
                "sector": p.sector,
                "quantity": p.quantity,
                "entry_price": p.avg_entry_price,
                "price": finite(p.close),
                "value": finite(p.value),
                "pnl": finite(p.unrealized_pnl),
                "pnl_pct": finite(p.close / p.avg_entry_price - 1) if p.avg_entry_price else None,
                "entry_date": p.entry_date.date(),
                "hold_days": (pd.Timestamp(as_of) - p.entry_date).days if as_of else None,
                "reason": last_reason.get(p.ticker, ""),
                "multiplier": p.multiplier,
            }
        )
    return rows
