"""The static report: one self-contained HTML file (Plotly.js and CSS inlined, no network)
with the dashboard's five tabs, for ``manage.py export_dashboard``.

Reads the portfolio with a fixed number of queries, computes the statistics with
``reporting.engine``, builds the figures with ``reporting.report`` and renders
``reporting/static_report.html``. Figures travel as JSON in ``<script
type="application/json">`` elements (``report.figure_json``) and are drawn when their tab is
first shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from django.template.loader import render_to_string
from django.utils import timezone
from plotly.offline import get_plotlyjs

from portfolio.models import Portfolio, PortfolioSnapshot, RebalanceEvent, StrategySnapshot
from reporting import exports, report, selectors
from reporting.engine.performance import drawdown_periods, monthly_returns_table, performance_stats
from reporting.engine.rolling import rolling_annual_volatility, rolling_sharpe_ratio
from risk.models import RiskLimit

TABS = ("Overview", "Risk", "Performance", "Strategies", "Configuration")
ROLLING_WINDOW = 60
NOT_COMPUTED = "not computed yet"
SNAPSHOT_COLUMNS = (
    "date",
    "equity",
    "daily_return",
    "drawdown",
    "leverage",
    "positions_gross",
    "positions_net",
)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


@dataclass
class Chart:
    id: str
    title: str
    json: str


def _pct(v, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v * 100:,.{digits}f}%"


def _num(v, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:,.{digits}f}"


def _series_frames(portfolio: Portfolio, names: list[str]):
    """(portfolio snapshots by date, strategy daily returns wide, strategy positions wide):
    2 queries. The returns are each book's after its funding day
    (``selectors.strategy_return_frame``), on the portfolio's return dates."""
    snaps = pd.DataFrame.from_records(
        list(
            PortfolioSnapshot.objects.filter(portfolio=portfolio)
            .order_by("date")
            .values_list(*SNAPSHOT_COLUMNS)
        ),
        columns=list(SNAPSHOT_COLUMNS),
    ).set_index("date")
    snaps.index = pd.DatetimeIndex(snaps.index)
    snaps["equity"] = snaps["equity"].astype(float)
    books = pd.DataFrame.from_records(
        list(
            StrategySnapshot.objects.filter(strategy__portfolio=portfolio).values_list(
                "strategy__name", "date", "daily_return", "positions_count"
            )
        ),
        columns=["strategy", "date", "daily_return", "positions"],
    )
    positions = books.pivot(index="date", columns="strategy", values="positions").sort_index()
    book_returns = selectors.strategy_return_frame(books, names)
    dates = selectors.portfolio_return_series(snaps).index
    return snaps, book_returns.reindex(dates), positions


def _stats_table(returns: dict[str, pd.Series]) -> Table:
    table = Table(
        "Performance statistics",
        [
            "",
            "Total return",
            "Annual return",
            "Annual vol",
            "Sharpe",
            "Sortino",
            "Calmar",
            "Max drawdown",
            "Longest drawdown (days)",
            "Win rate",
            "Best day",
            "Worst day",
        ],
        note="Daily simple returns, 252 days a year, sample volatility, risk-free rate 0; "
        "definitions in reporting/engine/performance.py.",
    )
    for name, r in returns.items():
        r = r.dropna()
        if not len(r):
            continue
        s = performance_stats(r)
        table.rows.append(
            [
                name,
                _pct(s.total_return),
                _pct(s.annual_return),
                _pct(s.annual_volatility),
                _num(s.sharpe_ratio),
                _num(s.sortino_ratio),
                _num(s.calmar_ratio),
                _pct(s.max_drawdown),
                str(s.max_drawdown_duration_days),
                _pct(s.win_rate, 1),
                _pct(s.best_day),
                _pct(s.worst_day),
            ]
        )
    return table


def report_context(portfolio: Portfolio) -> dict:
    """Everything the template shows, computed from the stored rows."""
    equity = exports.equity_frame(portfolio).set_index("date")
    strategies = list(portfolio.strategies.order_by("position_order", "id"))
    names = [s.name for s in strategies]
    snaps, book_returns, book_positions = _series_frames(portfolio, names)
    risk = exports.risk_frame(portfolio).set_index("date")
    positions = exports.positions_frame(portfolio)
    violations = exports.violations_frame(portfolio)
    limits = list(
        RiskLimit.objects.filter(portfolio=portfolio)
        .select_related("strategy", "instrument")
        .order_by("scope", "name")
    )
    rebalances = list(
        RebalanceEvent.objects.filter(portfolio=portfolio).order_by("-date", "-id")[:10]
    )
    bench_cols = [c for c in equity.columns if c.endswith("_close")]
    benchmark = equity[bench_cols[0]] if bench_cols else None
    returns = {"Portfolio": selectors.portfolio_return_series(snaps)} if len(snaps) > 1 else {}
    for name in names:
        if book_returns[name].notna().any():
            returns[name] = book_returns[name]
    if benchmark is not None and len(snaps) > 1:
        bench = benchmark.pct_change().iloc[1:].rename("benchmark")
        bench.index = pd.DatetimeIndex(bench.index)
        returns["S&P 500"] = bench
    charts = _charts(equity, snaps, book_returns, risk, names, returns, benchmark)
    return {
        "portfolio": portfolio,
        "generated_at": timezone.now(),
        "tabs": TABS,
        "as_of": portfolio.last_applied_date,
        "key_numbers": _key_numbers(portfolio, snaps, strategies),
        "strategy_table": _strategy_table(strategies, equity, returns, book_positions),
        "stats_table": _stats_table(returns),
        "drawdown_table": _drawdown_table(returns.get("Portfolio")),
        "risk_table": _risk_now_table(risk),
        "positions_table": _positions_table(positions),
        "violations_table": _violations_table(violations),
        "limits_table": _limits_table(limits),
        "settings_table": _settings_table(portfolio),
        "allocations_table": _allocations_table(strategies),
        "rebalances_table": _rebalances_table(rebalances),
        "charts": charts,
        "var_note": "" if "var" in charts else f"VaR and CVaR history: {NOT_COMPUTED}.",
        "downsample_note": report.DOWNSAMPLE_NOTE,
        "rolling_window": ROLLING_WINDOW,
    }


def report_html(portfolio: Portfolio) -> str:
    """The whole report as one HTML document (about 5 MB, most of it Plotly.js)."""
    context = report_context(portfolio) | {"plotly_js": get_plotlyjs()}
    return render_to_string("reporting/static_report.html", context)


def _charts(equity, snaps, book_returns, risk, names, returns, benchmark) -> dict[str, Chart]:
    figures: dict[str, tuple[str, dict]] = {}
    if len(equity):
        books = equity[[f"{n}_equity" for n in names]]
        books.columns = names
        figures["equity"] = (
            "Equity: portfolio, strategies and benchmark",
            report.equity_figure(equity["portfolio_equity"], books, benchmark),
        )
        figures["drawdown"] = ("Drawdown", report.drawdown_figure(snaps["drawdown"]))
        weights = equity[[f"{n}_weight" for n in names]]
        weights.columns = names
        figures["weights"] = ("Allocation over time", report.weights_figure(weights))
    if "Portfolio" in returns:
        r = returns["Portfolio"]
        figures["monthly"] = (
            "Monthly returns",
            report.monthly_returns_figure(monthly_returns_table(r)),
        )
        if len(r) >= ROLLING_WINDOW:
            sharpe = rolling_sharpe_ratio(r, ROLLING_WINDOW)
            vol = rolling_annual_volatility(r, ROLLING_WINDOW)
            figures["rolling"] = (
                "Rolling metrics",
                report.rolling_figure(sharpe, vol, ROLLING_WINDOW),
            )
    if len(book_returns):
        figures["growth"] = ("Per-strategy growth", report.growth_figure(book_returns))
    var = report.var_figure(risk)
    if var is not None:
        figures["var"] = ("Value at risk", var)
    return {
        k: Chart(f"fig-{k}", title, report.figure_json(fig)) for k, (title, fig) in figures.items()
    }


def _key_numbers(portfolio, snaps, strategies) -> list[tuple[str, str]]:
    active = sum(s.status == "active" for s in strategies)
    if not len(snaps):
        return [("Portfolio value", "no history yet"), ("Active strategies", str(active))]
    last = snaps.iloc[-1]
    prev = snaps["equity"].iloc[-2] if len(snaps) > 1 else float(portfolio.initial_capital)
    pnl = last["equity"] - prev
    total = last["equity"] / float(portfolio.initial_capital) - 1.0
    return [
        ("Portfolio value", _num(last["equity"])),
        ("Last day P&L", f"{_num(pnl)} ({_pct(last['daily_return'])})"),
        ("Total return", _pct(total)),
        ("Leverage", _num(last["leverage"])),
        ("Drawdown", _pct(last["drawdown"])),
        ("Active strategies", f"{active} of {len(strategies)}"),
        (
            "Open positions (gross / net)",
            f"{int(last['positions_gross'])} / {int(last['positions_net'])}",
        ),
    ]


def _strategy_table(strategies, equity, returns, book_positions) -> Table:
    table = Table(
        "Strategies",
        [
            "Strategy",
            "Allocation",
            "Current value",
            "Return",
            "Sharpe",
            "Max drawdown",
            "Positions",
            "Status",
        ],
        note="Return, Sharpe and drawdown from the book's daily returns, capital flows excluded.",
    )
    for s in strategies:
        col = f"{s.name}_equity"
        value = equity[col].dropna() if col in equity.columns else pd.Series(dtype=float)
        r = returns.get(s.name)
        stats = performance_stats(r.dropna()) if r is not None and r.notna().any() else None
        held = book_positions[s.name].dropna() if s.name in book_positions.columns else []
        in_force = (
            float(s.target_allocation) if s.current_allocation is None else s.current_allocation
        )
        table.rows.append(
            [
                s.name,
                _pct(in_force, 1),
                _num(value.iloc[-1]) if len(value) else "–",
                _pct(stats.total_return) if stats else "–",
                _num(stats.sharpe_ratio) if stats else "–",
                _pct(stats.max_drawdown) if stats else "–",
                str(int(held.iloc[-1])) if len(held) else "0",
                s.status,
            ]
        )
    return table


def _drawdown_table(returns: pd.Series | None) -> Table:
    table = Table("Deepest drawdowns", ["Peak", "Trough", "Recovery", "Depth", "Days"])
    if returns is None or not len(returns):
        return table
    for row in drawdown_periods(returns, top=5).itertuples(index=False):
        table.rows.append(
            [
                "start" if pd.isna(row.peak) else row.peak.date().isoformat(),
                row.trough.date().isoformat(),
                "not yet" if pd.isna(row.recovery) else row.recovery.date().isoformat(),
                _pct(row.depth),
                str(row.duration_days),
            ]
        )
    return table


RISK_LABELS = {
    "leverage": ("Leverage", _num),
    "drawdown": ("Drawdown", _pct),
    "volatility": ("Volatility (annual)", _pct),
    "var_95": ("VaR 95% (1 day)", _pct),
    "var_99": ("VaR 99% (1 day)", _pct),
    "cvar_95": ("CVaR 95% (1 day)", _pct),
    "cvar_99": ("CVaR 99% (1 day)", _pct),
    "diversification_ratio": ("Diversification ratio", _num),
    "max_correlation": ("Max strategy correlation", _num),
    "concentration_top5": ("Top-5 concentration", _pct),
    "open_mae": ("Open-position MAE (worst of any book)", _pct),
}


def _risk_now_table(risk: pd.DataFrame) -> Table:
    as_of = risk.index[-1].isoformat() if len(risk) else "no history"
    table = Table(
        f"Risk at the last close ({as_of})",
        ["Metric", "Value"],
        note="VaR and CVaR are positive one-day loss fractions of equity; leverage is gross "
        "exposure (netted) / equity.",
    )
    last = risk.iloc[-1] if len(risk) else None
    for col, (label, fmt) in RISK_LABELS.items():
        value = None if last is None else last[col]
        shown = NOT_COMPUTED if value is None or pd.isna(value) else fmt(float(value))
        table.rows.append([label, shown])
    return table


def _positions_table(positions: pd.DataFrame) -> Table:
    table = Table(
        "Open positions",
        ["Strategy", "Ticker", "Quantity", "Avg entry", "Entry date", "Last close", "Value", "P&L"],
    )
    for p in positions.itertuples(index=False):
        table.rows.append(
            [
                p.strategy,
                p.ticker,
                _num(p.quantity, 4),
                _num(p.avg_entry_price),
                p.entry_date.isoformat(),
                _num(p.last_close),
                _num(p.market_value),
                _num(p.unrealized_pnl),
            ]
        )
    return table


def _violations_table(violations: pd.DataFrame) -> Table:
    table = Table(
        "Violations (latest 50)",
        [
            "Date",
            "Limit",
            "Severity",
            "Strategy",
            "Ticker",
            "Value",
            "Threshold",
            "Action",
            "Status",
        ],
    )
    for v in violations.iloc[::-1].head(50).itertuples(index=False):
        table.rows.append(
            [
                v.date.isoformat(),
                v.limit,
                v.severity,
                v.strategy or "",
                v.ticker or "",
                _num(v.value, 4),
                _num(v.threshold, 4),
                v.action,
                v.status,
            ]
        )
    if not table.rows:
        table.note = "No violations recorded."
    return table


def _limits_table(limits) -> Table:
    table = Table(
        "Risk limits",
        ["Name", "Scope", "Applies to", "Metric", "Breach when", "Severity", "Action", "Enabled"],
    )
    for limit in limits:
        target = limit.strategy or limit.instrument or "all"
        side = ">" if limit.direction == "max" else "<"
        table.rows.append(
            [
                limit.name,
                limit.scope,
                str(target),
                limit.metric,
                f"{side} {limit.threshold:g}",
                limit.severity,
                limit.get_action_display(),
                "yes" if limit.enabled else "no",
            ]
        )
    if not table.rows:
        table.note = "No limits configured."
    return table


def _settings_table(p: Portfolio) -> Table:
    rows = [
        ("Initial capital", _num(float(p.initial_capital))),
        ("Leverage target", _num(float(p.leverage_target))),
        ("Allocation method", p.get_allocation_method_display()),
        ("Allocation parameters", str(p.allocation_params or "defaults")),
        ("Rebalance trigger", p.get_rebalance_trigger_display()),
        ("Rebalance frequency", p.get_rebalance_frequency_display()),
        ("Rebalance on bar", str(p.rebalance_trading_day)),
        ("Drift threshold", _pct(float(p.rebalance_threshold), 1)),
        ("Rebalance execution", p.get_rebalance_method_display()),
        ("Commission / slippage (bps)", f"{float(p.commission_bps):g} / {float(p.slippage_bps):g}"),
        ("Whole shares", "yes" if p.whole_shares else "no"),
        ("Config file", p.config_source or "–"),
    ]
    return Table("Portfolio settings", ["Setting", "Value"], [list(r) for r in rows])


def _allocations_table(strategies) -> Table:
    table = Table(
        "Allocations",
        ["Strategy", "Signal", "Parameters", "Target", "In force", "Risk config", "Status"],
    )
    for s in strategies:
        in_force = (
            float(s.target_allocation) if s.current_allocation is None else s.current_allocation
        )
        table.rows.append(
            [
                s.name,
                s.signal_type,
                ", ".join(f"{k}={v}" for k, v in s.parameters.items()),
                _pct(float(s.target_allocation), 1),
                _pct(in_force, 1),
                ", ".join(f"{k}={v}" for k, v in s.risk_config.items()) or "–",
                s.status,
            ]
        )
    return table


def _rebalances_table(events) -> Table:
    table = Table("Recent rebalances", ["Date", "Trigger", "Method", "Capital moved", "Trades"])
    for e in events:
        table.rows.append(
            [
                e.date.isoformat(),
                e.trigger,
                e.method,
                _num(float(e.capital_moved)),
                str(e.trades_count),
            ]
        )
    return table
