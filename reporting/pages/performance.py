"""Page 3, performance analytics: cumulative and calendar returns, drawdown periods, trade
analysis, attribution and rolling statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from portfolio.models import Portfolio
from reporting import charts, selectors
from reporting.engine.attribution import (
    CASH_SEGMENT,
    cumulative_contributions,
    daily_contributions,
    net_holdings,
    period_contributions,
    previous_close_weights,
    sector_brinson,
)
from reporting.engine.performance import (
    drawdown_periods,
    monthly_returns_table,
    period_returns,
    trade_stats,
)
from reporting.engine.rolling import (
    ROLLING_WINDOWS,
    correlation_band,
    rolling_annual_volatility,
    rolling_beta,
    rolling_correlations,
    rolling_sharpe_ratio,
)
from reporting.engine.trades import round_trips
from reporting.pages.common import (
    History,
    allocation_view,
    history_load,
    row_stamp,
    shown,
    state_cached,
    stored_html,
)
from reporting.pages.params import query_int

DEFAULT_WINDOW = 60
DRAWDOWN_ROWS = 10
# Points per line: the decimation keeps each bucket's first, last, min and max, so a
# half-width panel (~650 px) shows every peak and trough with 500; the full-width growth
# chart with 1,000.
SMALL_CHART_POINTS = 500
MAIN_CHART_POINTS = 1000
PAIR_LINES_UP_TO = 4  # strategies: up to 6 pair lines drawn beside the band, none beyond
# The page's sections, one shown at a time (?section=; the page would be 6,400 px tall at
# 1400 px and 8,000 at 390 with all 16 charts stacked), each computing only its own part.
SECTIONS = {
    "returns": "Returns",
    "trades": "Trades",
    "attribution": "Attribution",
    "rolling": "Rolling statistics",
}
DEFAULT_SECTION = "returns"


def parse_window(value: str | None) -> int:
    """The rolling window from ?window=: one of ROLLING_WINDOWS, else the default (a choice
    the page no longer offers); not a whole number at all is a ``QueryError``."""
    window = query_int({"window": value}, "window", default=DEFAULT_WINDOW, minimum=1)
    return window if window in ROLLING_WINDOWS else DEFAULT_WINDOW


def parse_section(value: str | None) -> str:
    """The section from ?section=: one of ``SECTIONS``, else the default (an old or
    mistyped link still shows a page, which names the section it shows)."""
    return value if value in SECTIONS else DEFAULT_SECTION


def performance_page(
    *, portfolio: Portfolio, window: int, section: str | None = DEFAULT_SECTION
) -> dict:
    """Context of the performance page's ``section`` (every section when None, as the
    static report renders them all), cached per committed state (``state_cached``; 1 query
    when cached: the strategies). Everything on the page is a function of the stored rows,
    which change only in a commit of the update path, and of the configuration the page
    shows (each strategy's status and allocations, the leverage target: the strategies'
    and the portfolio's rows are in the stamp), so a cached context is never stale."""
    sections = tuple(SECTIONS) if section is None else (section,)
    strategies = selectors.strategy_list(portfolio=portfolio)
    context = state_cached(
        portfolio=portfolio,
        name=f"performance:{window}:{'+'.join(sections)}",
        depends=(row_stamp(portfolio), *(row_stamp(s) for s in strategies)),
        build=lambda: stored_html(
            _performance_context(portfolio, strategies, window, sections),
            {"content": "performance_content"},
            portfolio=portfolio,
        ),
    )
    return {**context, "portfolio": portfolio}


def _performance_context(
    portfolio: Portfolio, strategies: list, window: int, sections: tuple[str, ...]
) -> dict:
    history = history_load(portfolio=portfolio, strategies=strategies)
    context = {
        "as_of": history.as_of,
        "window": window,
        "windows": ROLLING_WINDOWS,
        "sections": SECTIONS,
        "shown": sections,
        "section": sections[0] if len(sections) == 1 else None,
        "figures": {},
    }
    if len(history.snapshots) < 2:
        return context
    figures = context["figures"]
    if "returns" in sections:
        context.update(_returns(history, figures))
    if "trades" in sections or "attribution" in sections:
        fills = selectors.trade_frame(portfolio=portfolio, brief=True)
    if "trades" in sections:
        context.update(_trades(fills, figures))
    if "attribution" in sections:
        context.update(_attribution(history, figures))
        context.update(_brinson(history, fills, figures))
    if "rolling" in sections:
        _rolling(history, window, figures)
    for figure in figures.values():
        charts.rounded_for_display(figure)
    return context


def _returns(history: History, figures: dict) -> dict:
    """Growth, the return distributions, the monthly table and the deepest drawdowns."""
    returns = history.returns
    strategy_r = history.book_returns
    periods = drawdown_periods(returns, top=DRAWDOWN_ROWS)
    figures["cumulative"] = _cumulative_figure(returns, strategy_r, periods)
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
    drawdowns = [
        {k: (None if v is pd.NaT else v) for k, v in row.items()}
        for row in periods.to_dict("records")
    ]
    return {"drawdowns": drawdowns}


def _cumulative_figure(
    returns: pd.Series, strategy_r: pd.DataFrame, drawdowns: pd.DataFrame
) -> dict:
    """Growth of 1, prod(1 + r), for the portfolio and each book (a book is blank before
    it starts) on a log scale, with the portfolio's ``drawdowns`` (the table's rows)
    shaded."""
    frame = pd.DataFrame({"Portfolio": (1 + returns).cumprod()})
    for name in strategy_r.columns:
        r = strategy_r[name]
        frame[name] = (1 + r.fillna(0)).cumprod().where(r.notna().cummax())
    return charts.growth_figure(
        frame, drawdowns, "Growth of 1 (cumulative return + 1)", max_points=MAIN_CHART_POINTS
    )


def _trades(fills: pd.DataFrame, figures: dict) -> dict:
    """Closed-trade statistics from the fills: each closing fill is a round trip matched
    FIFO against its book's open lots of that ticker (``engine.trades.round_trips``)."""
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
        {"strategy": name, **{k: shown(v) for k, v in row.items()}} for name, row in by.iterrows()
    ]
    return {"trade_rows": rows, "fills": len(fills), "round_trips": len(trips)}


def _book_equity_and_flows(history: History) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each book's equity (0 before it is funded) and the capital moved into it at each
    close (``StrategySnapshot.flow``, stored by the update path: funding, rebalance
    transfers, a retired book's wind-down; negative out)."""
    equity = history.wide("equity").fillna(0.0)
    flows = history.wide("flow").fillna(0.0)
    return equity, flows


def _freq(days: int) -> str:
    """Calendar years for the per-period charts beyond three years of days, else months."""
    return "Y" if days > 3 * 252 else "M"


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
        max_points=SMALL_CHART_POINTS,
    )
    freq = _freq(len(contributions))
    periods = period_contributions(contributions, freq)
    if freq == "Y":
        periods.index = periods.index.year.astype(str)
    figures["contrib_periods"] = charts.bars_figure(
        periods,
        f"Contribution per {'year' if freq == 'Y' else 'month'}",
        yformat=".1%",
        barmode="relative",
    )
    weights = previous_close_weights(equity)
    latest = history.wide("weight").iloc[-1].dropna().to_dict()
    leverage_target = float(history.portfolio.leverage_target)
    rows = [
        {
            "name": s.name,
            "status": s.status,
            **allocation_view(s, weight=latest.get(s.name), leverage_target=leverage_target),
            "mean_weight": float(weights[s.name].mean()),
            "contribution": float(cumulative[s.name].iloc[-1]),
        }
        for s in history.strategies
    ]
    return {"book_rows": rows, "contribution_total": float(cumulative.iloc[-1].sum())}


def _brinson(history: History, fills: pd.DataFrame, figures: dict) -> dict:
    """Brinson-Fachler by sector of the netted portfolio against the equal-weight
    universe (``engine.attribution.sector_brinson``), over the whole history and per
    year."""
    instruments = selectors.instrument_frame()
    if instruments.empty:
        return {}
    tickers = list(instruments.index)
    dates = history.snapshots.index
    closes = selectors.close_matrix(tickers=tickers, end=history.as_of)
    closes = closes.reindex(closes.index.union(dates)).ffill()
    closes = closes.reindex(dates)
    result = sector_brinson(
        holdings=net_holdings(fills, dates, tickers),
        closes=closes,
        sectors=instruments["sector"],
        equity=history.snapshots["equity"],
        portfolio_returns=history.snapshots["daily_return"],
        multipliers=instruments["multiplier"],
        freq=_freq(len(dates)),
    )
    e = result.effects
    rows = _brinson_rows(result)
    figures["brinson_periods"] = _brinson_periods_figure(result.periods, _freq(len(dates)))
    return {
        "brinson_rows": rows,
        "brinson": e,
        "brinson_sum": float(e.total.sum()),
        "universe": len(tickers),
        "cash_segment": CASH_SEGMENT,
    }


def _brinson_rows(result) -> list[dict]:
    """A row per segment of ``result`` (``SectorBrinson``): its mean weight, benchmark
    weight and linked effects over the span, by name, cash last."""
    e = result.effects
    rows = [
        {
            "name": name,
            "weight": float(result.weights[name].mean()),
            "benchmark_weight": float(result.benchmark_weights[name]),
            "allocation": float(e.allocation[name]),
            "selection": float(e.selection[name]),
            "interaction": float(e.interaction[name]),
            "total": float(e.total[name]),
        }
        for name in e.total.index
    ]
    rows.sort(key=lambda r: (r["name"] == CASH_SEGMENT, r["name"]))
    return rows


def _brinson_periods_figure(periods: pd.DataFrame, freq: str) -> dict:
    """The effects per year (``freq`` "Y", labelled by year) or month, stacked bars."""
    if freq == "Y":
        periods.index = periods.index.year.astype(str)
    return charts.bars_figure(
        periods[["allocation", "selection", "interaction"]],
        f"Brinson effects per {'year' if freq == 'Y' else 'month'}",
        yformat=".1%",
        barmode="relative",
    )


def _rolling(history: History, window: int, figures: dict) -> None:
    """Rolling ``window``-day Sharpe ratio, volatility, beta to the S&P 500 and strategy
    correlations into ``figures`` (none while the history is no longer than the window)."""
    returns = pd.concat([history.returns, history.book_returns], axis=1)
    if len(returns) <= window:
        return
    figures["rolling_sharpe"] = charts.lines_figure(
        rolling_sharpe_ratio(returns, window),
        f"Rolling Sharpe ratio ({window} days)",
        yformat=".2f",
        widths={"Portfolio": 2.5},
        max_points=SMALL_CHART_POINTS,
    )
    figures["rolling_vol"] = charts.lines_figure(
        rolling_annual_volatility(returns, window),
        f"Rolling volatility ({window} days)",
        yformat=".0%",
        widths={"Portfolio": 2.5},
        max_points=SMALL_CHART_POINTS,
    )
    beta = _rolling_beta_figure(history, returns, window)
    if beta is not None:
        figures["rolling_beta"] = beta
    strategy_r = history.book_returns
    if strategy_r.shape[1] >= 2:
        figures["rolling_corr"] = _rolling_correlation_figure(strategy_r, window)


def _rolling_beta_figure(history: History, returns: pd.DataFrame, window: int) -> dict | None:
    """Rolling beta of each column of ``returns`` to the S&P 500's close-to-close returns
    on the same dates (the close carried over days without a bar); None without
    benchmark closes."""
    bench = selectors.benchmark_close_series(
        start=history.snapshots.index[0].date(), end=history.as_of
    )
    if bench.empty:
        return None
    closes = bench.reindex(bench.index.union(returns.index)).ffill().reindex(returns.index)
    bench_r = closes.pct_change()
    bench_r.iloc[0] = np.nan
    return charts.lines_figure(
        rolling_beta(returns, bench_r, window),
        f"Rolling beta to the S&P 500 ({window} days)",
        yformat=".2f",
        widths={"Portfolio": 2.5},
        max_points=SMALL_CHART_POINTS,
    )


def _rolling_correlation_figure(strategy_r: pd.DataFrame, window: int) -> dict:
    """The average of the rolling pairwise correlations of the books' returns inside the
    band of the lowest and highest pair, and each pair's line up to ``PAIR_LINES_UP_TO``
    strategies."""
    corr = rolling_correlations(strategy_r, window)
    corr.columns = [f"{a} / {b}" for a, b in corr.columns]
    pairs = corr if strategy_r.shape[1] <= PAIR_LINES_UP_TO else None
    fig = charts.correlation_band_figure(
        correlation_band(corr),
        pairs,
        f"Rolling strategy correlations ({window} days)",
        max_points=SMALL_CHART_POINTS,
    )
    fig["caption"] += (
        f" The average of the {corr.shape[1]} pairwise correlations inside the band "
        "of the lowest and highest pair"
        + (
            ", and each pair."
            if pairs is not None
            else f" (pairs drawn up to {PAIR_LINES_UP_TO} strategies)."
        )
    )
    return fig
