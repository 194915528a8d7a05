"""Page 1, the portfolio overview: key metrics, equity curve, strategy table, netted
positions, sectors, activity feed, and the allocation in force with its reasons."""

from __future__ import annotations

import pandas as pd

from portfolio.models import Portfolio, Strategy
from reporting import charts, selectors
from reporting.engine.netting import net_by_ticker
from reporting.engine.performance import TRADING_DAYS, performance_stats, sharpe_ratio
from reporting.pages.activity import ACTIVITY_ITEMS, activity_items
from reporting.pages.common import (
    History,
    allocation_view,
    finite,
    history_load,
    row_stamp,
    state_cached,
    stored_html,
)

TOP_POSITIONS = 10
RISK_FREE = 0.0  # annual rate for the overview's Sharpe figures (DESIGN: default 0)


def overview_page(*, portfolio: Portfolio) -> dict:
    """Context of the overview (a fixed number of queries, whatever the number of
    strategies, trades or days). The metrics, the strategy table, the positions and the
    charts come from stored rows and the configuration shown: computed once per committed
    state (``state_cached``, stamped with the portfolio's and the strategies' rows). The
    activity feed, the last rebalance's reasons and the pending requests are read on every
    request."""
    strategies = selectors.strategy_list(portfolio=portfolio)
    stored = state_cached(
        portfolio=portfolio,
        name="overview",
        depends=(row_stamp(portfolio), *(row_stamp(s) for s in strategies)),
        build=lambda: stored_html(
            _stored_context(portfolio, strategies), {"top": "overview_top"}, portfolio=portfolio
        ),
    )
    rebalances = selectors.activity_rebalance_list(portfolio=portfolio, limit=ACTIVITY_ITEMS)
    last = rebalances[0] if rebalances else None
    notes = last.notes if last else {}
    for row in stored["strategy_rows"]:
        row["why"] = notes.get(row["strategy"].name, "")
    return {
        "portfolio": portfolio,
        "last_rebalance": last,
        "pending_requests": selectors.rebalance_request_pending_count(portfolio=portfolio),
        "activity": activity_items(portfolio=portfolio, rebalances=rebalances),
        **stored,
    }


def _stored_context(portfolio: Portfolio, strategies: list[Strategy]) -> dict:
    history = history_load(portfolio=portfolio, strategies=strategies)
    latest = history.latest
    context = {
        "as_of": history.as_of,
        "strategy_rows": _strategy_rows(history),
        "figures": {},
    }
    if latest is None:
        return context
    positions = selectors.position_frame(portfolio=portfolio, as_of=history.as_of)
    context["metrics"] = _metrics(history)
    context["top_positions"] = _top_positions(positions, float(latest["equity"]))
    context["figures"] = {
        "equity": _equity_figure(history),
        "sectors": _sector_figure(positions),
        "asset_classes": _asset_class_figure(positions),
    }
    return context


def _metrics(history: History) -> dict:
    snaps, latest = history.snapshots, history.latest
    equity = float(latest["equity"])
    previous = float(snaps["equity"].iloc[-2]) if len(snaps) > 1 else None
    initial = float(history.portfolio.initial_capital)
    return {
        "equity": equity,
        "pnl_today": None if previous is None else equity - previous,
        "return_today": float(latest["daily_return"]),
        "total_return": equity / initial - 1,
        "leverage": float(latest["leverage"]),
        "drawdown": float(latest["drawdown"]),
        "active_strategies": sum(s.status == Strategy.Status.ACTIVE for s in history.strategies),
        "strategies": len(history.strategies),
        "positions_gross": int(latest["positions_gross"]),
        "positions_net": int(latest["positions_net"]),
        **_sharpe(history.returns),
    }


def _sharpe(returns: pd.Series) -> dict:
    """The portfolio's Sharpe ratio, full sample and trailing year (the last 252 daily
    returns; None until a full year exists): ``sharpe_ratio``, mean(r - rf/252) /
    std(r - rf/252, ddof=1) x sqrt(252), rf = ``RISK_FREE``."""
    year = returns.iloc[-TRADING_DAYS:] if len(returns) >= TRADING_DAYS else None
    return {
        "sharpe": finite(sharpe_ratio(returns, RISK_FREE)),
        "sharpe_1y": None if year is None else finite(sharpe_ratio(year, RISK_FREE)),
        "risk_free": RISK_FREE,
    }


def _strategy_rows(history: History) -> list[dict]:
    """One row per book: the latest snapshot, its flow-free return and Sharpe
    (``performance_stats`` of StrategySnapshot.daily_return) and its allocation (the
    last rebalance's reason, ``why``, is added by ``overview_page``).

    capital: the book's equity (its latest StrategySnapshot); the books' capital sums to
    the portfolio equity. exposure: its gross exposure, long + short market value;
    exposure_share = exposure / portfolio equity. With a leverage target T a book holds
    allocation / T of the capital and trades allocation of it, so the exposures sum to
    up to T x the equity while the capital sums to 1 x."""
    ss = history.strategy_snapshots
    last = ss[ss["date"] == ss["date"].max()].set_index("strategy") if len(ss) else None
    equity = float(history.latest["equity"]) if history.latest is not None else None
    leverage_target = float(history.portfolio.leverage_target)
    rows = []
    for s in history.strategies:
        has_snapshot = last is not None and s.name in last.index
        # a book with no snapshot yet (no bar applied): a dash, not a 500
        weight = float(last.loc[s.name, "weight"]) if has_snapshot else None
        row = {
            "strategy": s,
            **allocation_view(s, weight=weight, leverage_target=leverage_target),
        }
        if has_snapshot:
            snap = last.loc[s.name]
            r = history.strategy_returns(s.name)
            stats = performance_stats(r) if len(r) else None
            exposure = float(snap["long_exposure"]) + float(snap["short_exposure"])
            row.update(
                capital=float(snap["equity"]),
                exposure=exposure,
                exposure_share=finite(exposure / equity) if equity else None,
                leverage=float(snap["leverage"]),
                drawdown=float(snap["drawdown"]),
                positions=int(snap["positions_count"]),
                total_return=finite(stats.total_return) if stats else None,
                sharpe=finite(stats.sharpe_ratio) if stats else None,
            )
        rows.append(row)
    return rows


def _equity_figure(history: History) -> dict:
    equity = history.snapshots["equity"]
    start = history.snapshots.index[0]
    bench = selectors.benchmark_close_series(start=start.date(), end=history.as_of)
    rebased = None
    if not bench.empty:
        aligned = bench.reindex(bench.index.union(equity.index)).ffill().reindex(equity.index)
        first = aligned.dropna()
        if len(first):
            # rebased so the benchmark starts at the portfolio's initial capital
            rebased = aligned / first.iloc[0] * float(history.portfolio.initial_capital)
    events = selectors.rebalance_event_frame(portfolio=history.portfolio)
    return charts.equity_curve_figure(equity, history.wide("equity"), rebased, events)


def _top_positions(positions: pd.DataFrame, equity: float) -> list[dict]:
    """Positions netted by ticker across books (``net_by_ticker``: net = sum of signed
    values, gross = sum of |values|, pnl = sum of unrealized P&L); the 10 largest |net|,
    with weight = net / equity."""
    if positions.empty:
        return []
    top = net_by_ticker(positions).head(TOP_POSITIONS).rename(columns={"unrealized_pnl": "pnl"})
    top["weight"] = top["net"] / equity
    return [{"ticker": t, **row} for t, row in top.iterrows()]


def _sector_figure(positions: pd.DataFrame) -> dict:
    """Net exposure by ticker, its absolute value summed by sector."""
    if positions.empty:
        return charts.pie_figure(pd.Series(dtype=float), "Sector allocation (no positions)")
    net = positions.groupby(["sector", "ticker"])["value"].sum().abs()
    by_sector = net.groupby(level="sector").sum().sort_values(ascending=False)
    fig = charts.pie_figure(by_sector, "Sector allocation (|net exposure|)")
    fig["caption"] = "Each ticker's position netted across books, absolute value by sector."
    return fig


def _asset_class_figure(positions: pd.DataFrame) -> dict:
    """Net exposure by ticker, its absolute value summed by asset class
    (Instrument.asset_class), as the sector pie."""
    if positions.empty:
        return charts.pie_figure(pd.Series(dtype=float), "Asset classes (no positions)")
    net = positions.groupby(["asset_class", "ticker"])["value"].sum().abs()
    by_class = net.groupby(level="asset_class").sum().sort_values(ascending=False)
    fig = charts.pie_figure(by_class, "Asset class allocation (|net exposure|)")
    fig["caption"] = (
        "Each ticker's position netted across books, absolute value by asset class; "
        f"{by_class.sum():,.0f} in all, as the sector pie."
    )
    return fig
