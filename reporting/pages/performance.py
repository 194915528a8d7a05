"""Page 3, performance analytics: cumulative and calendar returns, drawdown periods, trade
analysis, attribution and rolling statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from portfolio.models import Portfolio
from reporting import charts, selectors
from reporting.engine.attribution import (
    cumulative_contributions,
    daily_contributions,
    linked_brinson_fachler,
    period_contributions,
    previous_close_weights,
    strategy_returns,
)
from reporting.engine.performance import (
    drawdown_periods,
    monthly_returns_table,
    period_returns,
    trade_stats,
)
from reporting.engine.rolling import (
    ROLLING_WINDOWS,
    rolling_annual_volatility,
    rolling_beta,
    rolling_correlations,
    rolling_sharpe_ratio,
)
from reporting.engine.trades import round_trips
from reporting.pages.common import History, finite, history_load
from reporting.pages.params import query_int

DEFAULT_WINDOW = 60


def parse_window(value: str | None) -> int:
    """The rolling window from ?window=: one of ROLLING_WINDOWS, else the default (a choice
    the page no longer offers); not a whole number at all is a ``QueryError``."""
    window = query_int({"window": value}, "window", default=DEFAULT_WINDOW, minimum=1)
    return window if window in ROLLING_WINDOWS else DEFAULT_WINDOW


def performance_page(*, portfolio: Portfolio, window: int) -> dict:
    """Context of the performance page (a fixed 5 queries: snapshots, strategies, their
    snapshots, fills, benchmark)."""
    history = history_load(portfolio=portfolio)
    context = {
        "portfolio": portfolio,
        "as_of": history.as_of,
        "window": window,
        "windows": ROLLING_WINDOWS,
        "figures": {},
    }
    if len(history.snapshots) < 2:
        return context
    figures = context["figures"]
    returns = history.returns
    strategy_r = history.book_returns
    figures["cumulative"] = _cumulative_figure(returns, strategy_r)
    figures["hist_daily"] = charts.histogram_figure(returns, "Daily returns")
    figures["hist_monthly"] = charts.histogram_figure(
        period_returns(returns, "M"), "Monthly returns", bins=30
    )
    figures["hist_yearly"] = charts.histogram_figure(
        period_returns(returns, "Y"), "Yearly returns", bins=15
    )
    breakdown = {
        name: monthly_returns_table(strategy_r[name].dropna())
        for name in history.names
        if strategy_r[name].notna().any()
    }
    figures["monthly"] = charts.monthly_heatmap_figure(monthly_returns_table(returns), breakdown)
    context["drawdowns"] = [
        {k: (None if v is pd.NaT else v) for k, v in row.items()}
        for row in drawdown_periods(returns, top=10).to_dict("records")
    ]
    context.update(_trades(portfolio, figures))
    context.update(_attribution(history, figures))
    _rolling(history, window, figures)
    return context


def _cumulative_figure(returns: pd.Series, strategy_r: pd.DataFrame) -> dict:
    """prod(1 + r) - 1 for the portfolio and each book (a book is blank before it starts)."""
    frame = pd.DataFrame({"Portfolio": (1 + returns).cumprod() - 1})
    for name in strategy_r.columns:
        r = strategy_r[name]
        frame[name] = ((1 + r.fillna(0)).cumprod() - 1).where(r.notna().cummax())
    widths = {"Portfolio": 2.5}
    return charts.lines_figure(frame, "Cumulative return", yformat=".0%", widths=widths)


def _trades(portfolio: Portfolio, figures: dict) -> dict:
    """Closed-trade statistics from the fills: each closing fill is a round trip matched
    FIFO against its book's open lots of that ticker (``engine.trades.round_trips``)."""
    fills = selectors.trade_frame(portfolio=portfolio, brief=True)
    if fills.empty:
        return {"trade_rows": [], "fills": 0}
    trips = round_trips(fills)
    if trips.empty:
        return {"trade_rows": [], "fills": len(fills)}
    stats = trade_stats(trips)
    by = stats.by_strategy
    figures["trade_pnl"] = charts.histogram_figure(
        trips["realized_pnl"], "Closed-trade P&L", bins=60, xformat=",.0f", clip=0.01
    )
    figures["win_rate"] = charts.bars_figure(
        by[["win_rate"]].rename(columns={"win_rate": "win rate"}),
        "Win rate by strategy",
        yformat=".0%",
    )
    figures["win_loss"] = charts.bars_figure(
        by[["avg_winner", "avg_loser"]].rename(
            columns={"avg_winner": "average winner", "avg_loser": "average loser"}
        ),
        "Average winner vs. average loser",
        yformat=",.0f",
    )
    figures["hold_time"] = charts.histogram_figure(
        stats.hold_days, "Hold time (calendar days)", bins=50, xformat=".0f", normal=False
    )
    per_month = stats.trades_per_month
    if len(per_month) > 36:
        per_month = per_month.groupby(per_month.index.year).sum()
        title = "Closed trades per year"
    else:
        title = "Closed trades per month"
    figures["frequency"] = charts.bars_figure(per_month, title, barmode="stack", yformat=",d")
    rows = [
        {"strategy": name, **{k: finite(v) for k, v in row.items()}} for name, row in by.iterrows()
    ]
    return {"trade_rows": rows, "fills": len(fills), "round_trips": len(trips)}


def _book_equity_and_flows(history: History) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each book's equity (0 before it is funded) and the capital moved into it at each
    close (``StrategySnapshot.flow``, stored by the update path: funding, rebalance
    transfers, a retired book's wind-down; negative out)."""
    equity = history.wide("equity").fillna(0.0)
    flows = history.wide("flow").fillna(0.0)
    return equity, flows


def _attribution(history: History, figures: dict) -> dict:
    equity, flows = _book_equity_and_flows(history)
    if (equity.sum(axis=1) <= 0).any() or not len(history.names):
        return {}
    contributions = daily_contributions(equity, flows)
    cumulative = cumulative_contributions(contributions)
    figures["contrib_cumulative"] = charts.stacked_area_figure(
        cumulative,
        cumulative.sum(axis=1),
        "Cumulative contribution to portfolio return",
        max_points=charts.SECONDARY_POINTS,
    )
    freq = "Y" if len(contributions) > 3 * 252 else "M"
    periods = period_contributions(contributions, freq)
    if freq == "Y":
        periods.index = periods.index.year.astype(str)
    figures["contrib_periods"] = charts.bars_figure(
        periods,
        f"Contribution per {'year' if freq == 'Y' else 'month'}",
        yformat=".1%",
        barmode="relative",
    )
    # Brinson-Fachler against the static targets, normalized to sum to 1 (they sum to the
    # leverage target): the benchmark is the target mix of the same books, rebalanced daily.
    target = pd.Series({s.name: float(s.target_allocation) for s in history.strategies})
    if target.sum() <= 0:
        return {}
    effects = linked_brinson_fachler(
        previous_close_weights(equity),
        target / target.sum(),
        strategy_returns(equity, flows).fillna(0.0),
    )
    rows = [
        {
            "name": name,
            "target": float(target[name] / target.sum()),
            "allocation": float(effects.allocation[name]),
            "selection": float(effects.selection[name]),
            "interaction": float(effects.interaction[name]),
            "total": float(effects.total[name]),
            "contribution": float(cumulative[name].iloc[-1]),
        }
        for name in history.names
    ]
    return {
        "brinson_rows": rows,
        "brinson": effects,
        "contribution_total": float(cumulative.iloc[-1].sum()),
    }


def _rolling(history: History, window: int, figures: dict) -> None:
    returns = pd.concat([history.returns, history.book_returns], axis=1)
    if len(returns) <= window:
        return
    figures["rolling_sharpe"] = charts.lines_figure(
        rolling_sharpe_ratio(returns, window),
        f"Rolling Sharpe ratio ({window} days)",
        yformat=".2f",
        widths={"Portfolio": 2.5},
        max_points=charts.SECONDARY_POINTS,
    )
    figures["rolling_vol"] = charts.lines_figure(
        rolling_annual_volatility(returns, window),
        f"Rolling volatility ({window} days)",
        yformat=".0%",
        widths={"Portfolio": 2.5},
        max_points=charts.SECONDARY_POINTS,
    )
    bench = selectors.benchmark_close_series(
        start=history.snapshots.index[0].date(), end=history.as_of
    )
    if not bench.empty:
        closes = bench.reindex(bench.index.union(returns.index)).ffill().reindex(returns.index)
        bench_r = closes.pct_change()
        bench_r.iloc[0] = np.nan
        figures["rolling_beta"] = charts.lines_figure(
            rolling_beta(returns, bench_r, window),
            f"Rolling beta to the S&P 500 ({window} days)",
            yformat=".2f",
            widths={"Portfolio": 2.5},
            max_points=charts.SECONDARY_POINTS,
        )
    strategy_r = history.book_returns
    if strategy_r.shape[1] >= 2:
        corr = rolling_correlations(strategy_r, window)
        corr.columns = [f"{a} / {b}" for a, b in corr.columns]
        figures["rolling_corr"] = charts.lines_figure(
            corr,
            f"Rolling strategy correlations ({window} days)",
            yformat=".2f",
            max_points=charts.SECONDARY_POINTS,
        )
