"""The static report: one self-contained HTML file (Plotly.js and CSS inlined, no network)
with the dashboard's five tabs, for ``manage.py export_dashboard``.

Every tab is rendered from the context the live page renders: the page builders of
``reporting.pages`` (``overview_page``, ``risk_page``, ``performance_page``, one
``strategy_page`` per strategy, ``config_page``) are called as the views call them, their
figures are embedded as they are (``charts.figure_json``) and their tables are the pages'
rows formatted with the pages' own template filters (``pct``, ``num``, ``stat``). Nothing
is queried or computed here, so the report and the dashboard cannot disagree. Figures
travel as JSON in ``<script type="application/json">`` elements and are drawn when their
tab is first shown.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils import timezone
from plotly.offline import get_plotlyjs

from portfolio.models import Portfolio
from reporting import selectors
from reporting.charts import figure_json
from reporting.pages.config import config_page
from reporting.pages.overview import overview_page
from reporting.pages.performance import DEFAULT_WINDOW, performance_page
from reporting.pages.risk import risk_page
from reporting.pages.strategy import strategy_page
from reporting.static_blocks import Cards, Chart, Heading, Links, Panel, Table
from reporting.templatetags.dashboard import num, pct, stat

TABS = ("Overview", "Risk", "Performance", "Strategies", "Configuration")
VIOLATIONS_SHOWN = 50  # of the risk page's log
NOTE_NO_HISTORY = "no history yet"
SMALL_FIGURE_PX = 260


def page_contexts(portfolio: Portfolio) -> dict:
    """The live pages' contexts, from the live pages' builders, with the arguments a first
    visit of each page has (no filters, the default rolling window, page 1 of the trades,
    the strategy's most traded ticker)."""
    strategies = selectors.strategy_list(portfolio=portfolio)
    return {
        "overview": overview_page(portfolio=portfolio),
        "risk": risk_page(portfolio=portfolio, params={}),
        "performance": performance_page(portfolio=portfolio, window=DEFAULT_WINDOW, section=None),
        "strategies": [
            strategy_page(portfolio=portfolio, strategy=s, ticker="", page=1) for s in strategies
        ],
        "config": config_page(portfolio=portfolio),
    }


def report_context(portfolio: Portfolio) -> dict:
    """Everything the template shows: the page contexts (``pages``) and, per tab, its
    blocks (cards, charts, tables) built from them."""
    pages = page_contexts(portfolio)
    panels = [
        Panel("Overview", _overview_blocks(pages["overview"])),
        Panel("Risk", _risk_blocks(pages["risk"])),
        Panel("Performance", _performance_blocks(pages["performance"])),
        Panel("Strategies", _strategies_blocks(pages["strategies"])),
        Panel("Configuration", _config_blocks(pages["config"])),
    ]
    return {
        "portfolio": portfolio,
        "generated_at": timezone.now(),
        "tabs": TABS,
        "as_of": portfolio.last_applied_date,
        "pages": pages,
        "panels": panels,
    }


def report_html(portfolio: Portfolio) -> str:
    """The whole report as one HTML document (about 5 MB, most of it Plotly.js)."""
    context = report_context(portfolio) | {"plotly_js": get_plotlyjs()}
    return render_to_string("reporting/static_report.html", context)


def _charts(figures: dict, prefix: str) -> list[Chart]:
    """Every figure of a page, in the page's order, as embedded JSON."""
    charts = []
    for key, fig in figures.items():
        if not fig:
            continue
        title = ((fig.get("layout") or {}).get("title") or {}).get("text") or key
        height = (fig.get("layout") or {}).get("height") or 0
        charts.append(
            Chart(
                f"fig-{prefix}-{key}",
                title,
                figure_json(fig),
                fig.get("caption") or "",
                half=0 < height <= SMALL_FIGURE_PX,
            )
        )
    return charts


def _overview_blocks(ctx: dict) -> list:
    m = ctx.get("metrics")
    if not m:
        return [Heading("Overview", f"Portfolio value: {NOTE_NO_HISTORY}.")]
    cards = _overview_cards(m)
    strategies = _strategies_table(ctx["strategy_rows"])
    top = _top_positions_table(ctx.get("top_positions", []))
    return [cards, *_charts(ctx["figures"], "overview"), strategies, top]


def _overview_cards(m: dict) -> Cards:
    """The overview's headline cards from ``m`` (the overview page's ``metrics``)."""
    return Cards(
        [
            ("Total value", num(m["equity"])),
            ("Today's P&L", f"{num(m['pnl_today'])} ({pct(m['return_today'])})"),
            ("Total return", pct(m["total_return"])),
            ("Leverage", num(m["leverage"], 3)),
            ("Drawdown", pct(m["drawdown"])),
            (
                f"Sharpe (rf {pct(m['risk_free'], 0)}; 1y)",
                f"{num(m['sharpe'])} ({num(m['sharpe_1y'])})",
            ),
            ("Active strategies", f"{m['active_strategies']} / {m['strategies']}"),
            ("Positions (gross / net)", f"{m['positions_gross']} / {m['positions_net']}"),
        ]
    )


def _strategies_table(rows: list[dict]) -> Table:
    """A row per strategy book (the overview page's ``strategy_rows``), as its table."""
    table = Table(
        "Strategies",
        ["Strategy", "Capital", "Weight", "Gross exposure", "Allocation in force", "Static"]
        + ["Return", "Sharpe", "Drawdown", "Positions", "Status", "Why (last rebalance)"],
        note="Return and Sharpe: performance_stats of the book's flow-free daily returns.",
    )
    for r in rows:
        table.rows.append(
            [
                r["strategy"].name,
                num(r.get("capital")),
                pct(r.get("weight"), 1),
                num(r.get("exposure"), 0),
                pct(r["in_force"], 2),
                pct(r["static"], 1),
                pct(r.get("total_return")),
                num(r.get("sharpe")),
                pct(r.get("drawdown")),
                "–" if r.get("positions") is None else str(r["positions"]),
                r["strategy"].status,
                r["why"],
            ]
        )
    return table


def _top_positions_table(positions: list[dict]) -> Table:
    """The overview page's ``top_positions`` (netted across books) as a table."""
    return Table(
        "Top 10 positions (netted across books)",
        ["Ticker", "Net", "Weight", "Gross", "Unrealized P&L", "Books"],
        [
            [p["ticker"], num(p["net"], 0), pct(p["weight"], 1), num(p["gross"], 0)]
            + [num(p["pnl"], 0), str(p["books"])]
            for p in positions
        ],
        note="" if positions else "No open positions.",
    )


def _risk_blocks(ctx: dict) -> list:
    if not ctx["figures"]:
        return [Heading("Risk", f"Risk: {NOTE_NO_HISTORY}.")]
    cards = _risk_cards(ctx)
    blocks = [cards, *_charts(ctx["figures"], "risk")]
    if ctx.get("risk_rows"):
        blocks.append(_risk_contributions_table(ctx))
    blocks += _exposure_tables(ctx)
    blocks.append(_violations_table(ctx["violations"]))
    return blocks


def _risk_cards(ctx: dict) -> Cards:
    """The risk page's headline cards: leverage and volatility beside their limits, and
    the 1-day VaR and CVaR at 95% and 99%."""
    var = ctx["var"]["values"]
    return Cards(
        [
            ("Leverage", num(ctx["leverage"], 3)),
            ("Leverage limit", num(ctx["leverage_limit"])),
            (f"Volatility ({ctx['volatility_source']})", pct(ctx["volatility"])),
            ("Volatility limit", pct(ctx["volatility_limit"], 1)),
            ("VaR 95% / 99% (1 day)", f"{pct(var['var_95'])} / {pct(var['var_99'])}"),
            ("CVaR 95% / 99% (1 day)", f"{pct(var['cvar_95'])} / {pct(var['cvar_99'])}"),
        ]
    )


def _risk_contributions_table(ctx: dict) -> Table:
    """The risk page's ``risk_rows``, a row per strategy and the portfolio's total."""
    return Table(
        "Risk contributions",
        ["Strategy", "Equity weight", "Risk weight", "Own vol", "Marginal"]
        + ["Risk contribution", "Share"],
        [
            [r["name"], pct(r["equity_weight"], 1), pct(r["weight"], 2)]
            + [pct(r["vol"]), pct(r["marginal"]), pct(r["rc"]), pct(r["share"], 1)]
            for r in ctx["risk_rows"]
        ]
        + [["Portfolio", "", "", "", "", pct(ctx["risk_total"]), "100%"]],
        note="Marginal (S w)_i / sqrt(w'S w); RC_i = w_i x marginal over the last "
        f"{ctx['risk_window']} days; diversification ratio "
        f"{num(ctx['diversification'])}.",
    )


def _exposure_tables(ctx: dict) -> list[Table]:
    """The correlated pairs and the sector and asset-class exposure tables."""
    return [
        Table(
            "Correlated pairs",
            ["Pair", "Correlation", "Above threshold"],
            [
                [f"{p['a']} / {p['b']}", num(p["value"], 3), "yes" if p["alert"] else ""]
                for p in ctx.get("correlation_pairs", [])
            ],
        ),
        Table(
            "Sector and asset-class exposure",
            ["Kind", "Group", "Net", "Gross", "Cap"],
            [
                [g["kind"], str(g["group"]), pct(g["net"], 1), pct(g["gross"], 1)]
                + ["no limit" if g["cap"] is None else f"{pct(g['cap'], 1)} ({g['basis']})"]
                for g in ctx.get("group_exposure", [])
            ],
        ),
    ]


def _violations_table(violations) -> Table:
    table = Table(
        f"Violations (latest {VIOLATIONS_SHOWN})",
        ["Date", "Severity", "Limit", "Strategy / ticker", "Value", "Threshold"]
        + ["Action taken", "Status", "Resolved"],
    )
    for v in violations[:VIOLATIONS_SHOWN]:
        where = " ".join(
            x
            for x in (
                v.strategy.name if v.strategy else "",
                v.instrument.ticker if v.instrument else "",
                v.group or "",
            )
            if x
        )
        table.rows.append(
            [
                v.date.isoformat(),
                v.severity,
                v.limit.name,
                where,
                num(v.value, 4),
                num(v.threshold, 4),
                v.get_action_taken_display(),
                v.status,
                v.resolved_on.isoformat() if v.resolved_on else "",
            ]
        )
    if not table.rows:
        table.note = "No violations recorded."
    return table


def _performance_blocks(ctx: dict) -> list:
    if not ctx["figures"]:
        return [Heading("Performance", "Not enough history yet (two bar dates needed).")]
    drawdowns = _drawdowns_table(ctx["drawdowns"])
    trades = _closed_trades_table(ctx)
    blocks = [*_charts(ctx["figures"], "performance"), drawdowns, trades]
    if ctx.get("brinson_rows"):
        blocks.append(_brinson_table(ctx))
    return blocks


def _drawdowns_table(drawdowns: list[dict]) -> Table:
    """The performance page's deepest drawdown periods, dates and depth, a row each."""
    return Table(
        "Drawdown periods (10 deepest)",
        ["Peak", "Start", "Trough", "Recovery", "Depth", "Days"],
        [
            [
                _day(d["peak"], "start"),
                _day(d["start"]),
                _day(d["trough"]),
                _day(d["recovery"], "not recovered"),
                pct(d["depth"]),
                str(d["duration_days"]),
            ]
            for d in drawdowns
        ],
    )


def _closed_trades_table(ctx: dict) -> Table:
    """The performance page's ``trade_rows``: closed-trade statistics per strategy."""
    return Table(
        "Closed trades by strategy",
        ["Strategy", "Closed", "Win rate", "Avg winner", "Avg loser", "Win/loss"]
        + ["Profit factor", "Total P&L", "Median hold (d)"],
        [
            [r["strategy"], num(r["n_trades"], 0), pct(r["win_rate"], 1), num(r["avg_winner"])]
            + [num(r["avg_loser"]), num(r["win_loss_ratio"]), num(r["profit_factor"])]
            + [num(r["total_pnl"], 0), num(r["hold_days_median"], 0)]
            for r in ctx.get("trade_rows", [])
        ],
        note=f"{ctx.get('fills', 0)} fills; {ctx.get('round_trips', 0)} closing fills matched "
        "first-in first-out against their book's open lots.",
    )


def _brinson_table(ctx: dict) -> Table:
    """The performance page's ``brinson_rows`` (Brinson-Fachler effects by sector against
    the equal-weight universe) and the span's returns in the note."""
    b = ctx["brinson"]
    return Table(
        "Attribution by sector (Brinson-Fachler against the equal-weight universe)",
        ["Sector", "Weight", "Benchmark weight", "Allocation", "Selection"]
        + ["Interaction", "Total effect"],
        [
            [r["name"], pct(r["weight"], 1), pct(r["benchmark_weight"], 1)]
            + [pct(r["allocation"]), pct(r["selection"]), pct(r["interaction"])]
            + [pct(r["total"])]
            for r in ctx["brinson_rows"]
        ],
        note=f"Portfolio {pct(b.portfolio_return)}, equal-weight universe of "
        f"{ctx.get('universe', 0)} stocks {pct(b.benchmark_return)}, "
        f"active {pct(b.active_return)}; days linked with GRAP.",
    )


def _day(value, missing: str = "") -> str:
    return missing if value is None else value.date().isoformat()


def _strategies_blocks(contexts: list[dict]) -> list:
    if not contexts:
        return [Heading("Strategies", "No strategies yet.")]
    blocks = [Links([(c["strategy"].name, f"strategy-{i}") for i, c in enumerate(contexts)])]
    for i, ctx in enumerate(contexts):
        s = ctx["strategy"]
        params = ", ".join(f"{k} {v}" for k, v in s.parameters.items())
        blocks.append(
            Heading(
                s.name,
                f"{s.signal_type} ({params}), {s.status}; allocation static "
                f"{pct(ctx['static'], 1)}, in force {pct(ctx['in_force'], 2)}.",
                anchor=f"strategy-{i}",
            )
        )
        latest = ctx.get("latest")
        if latest is None:
            blocks.append(Heading("", f"{s.name}: {NOTE_NO_HISTORY}."))
            continue
        blocks.append(
            Cards(
                [
                    ("Equity", num(latest["equity"])),
                    ("Weight in portfolio", pct(latest["weight"], 1)),
                    ("Leverage", num(latest["leverage"], 3)),
                    ("Drawdown", pct(latest["drawdown"])),
                ]
            )
        )
        blocks.append(
            Table(
                f"{s.name}: statistics",
                ["Statistic", "Value", "Definition"],
                [[x["label"], stat(x["value"], x["fmt"]), x["definition"]] for x in ctx["stats"]]
                if ctx.get("stats")
                else [],
            )
        )
        blocks += _charts(ctx["figures"], f"strategy-{i}")
        blocks.append(_positions_table(s.name, ctx["positions"]))
    return blocks


def _positions_table(name: str, positions: list[dict]) -> Table:
    return Table(
        f"{name}: positions",
        ["Ticker", "Sector", "Quantity", "Entry price", "Price", "Value", "P&L", "P&L %"]
        + ["Entry date", "Held (days)", "Last fill reason"],
        [
            [p["ticker"], p["sector"], num(p["quantity"], 4), num(p["entry_price"])]
            + [num(p["price"]), num(p["value"], 0), num(p["pnl"], 0), pct(p["pnl_pct"])]
            + [p["entry_date"].isoformat(), str(p["hold_days"]), p["reason"]]
            for p in positions
        ],
        note="" if positions else "No open positions.",
    )


def _config_blocks(ctx: dict) -> list:
    allocations = Table(
        "Allocations",
        ["Strategy", "Signal", "Status", "Static", "In force", "Why (last rebalance)"]
        + ["Risk config"],
        [
            [a["strategy"].name, a["strategy"].signal_type, a["strategy"].status]
            + [pct(a["static"], 1), pct(a["in_force"], 2), a["why"]]
            + [", ".join(f"{k} {v}" for k, v in a["strategy"].risk_config.items())]
            for a in ctx["allocations"]
        ]
        + [["Total", "", "", pct(ctx["static_total"], 1), "", "", ""]],
    )
    limits = Table(
        "Risk limits",
        ["Name", "Scope", "Metric", "Breaches when", "Severity", "Action", "Enabled"],
        [
            [
                lim.name,
                _limit_scope(lim),
                lim.metric,
                f"{'>' if lim.direction == 'max' else '<'} {lim.threshold:g}",
                lim.severity,
                lim.get_action_display(),
                "yes" if lim.enabled else "no",
            ]
            for lim in ctx["limits"]
        ],
        note="" if ctx["limits"] else "No limits configured.",
    )
    channels = Table(
        "Alert channels",
        ["Name", "Kind", "Enabled", "Minimum severity"],
        [
            [c.name, c.get_kind_display(), "yes" if c.enabled else "no", c.min_severity]
            for c in ctx["channels"]
        ],
    )
    rebalances = Table(
        "Recent rebalances",
        ["Date", "Trigger", "Method", "Capital moved", "Trades", "Cost"],
        [
            [e.date.isoformat(), e.get_trigger_display(), e.method, num(e.capital_moved, 0)]
            + [str(e.trades_count), num(e.cost)]
            for e in ctx["rebalances"]
        ],
    )
    return [_settings_table(ctx["portfolio"]), allocations, limits, channels, rebalances]


def _limit_scope(lim) -> str:
    on = lim.strategy.name if lim.strategy else lim.instrument.ticker if lim.instrument else ""
    on = on or lim.group or ""
    return f"{lim.scope} ({on})" if on else lim.scope


def _settings_table(p: Portfolio) -> Table:
    rows = [
        ("Initial capital", num(float(p.initial_capital))),
        ("Leverage target", num(float(p.leverage_target))),
        ("Allocation method", p.get_allocation_method_display()),
        ("Allocation parameters", str(p.allocation_params or "defaults")),
        ("Rebalance trigger", p.get_rebalance_trigger_display()),
        ("Rebalance frequency", p.get_rebalance_frequency_display()),
        ("Rebalance on bar", str(p.rebalance_trading_day)),
        ("Drift threshold", pct(float(p.rebalance_threshold), 1)),
        ("Rebalance execution", p.get_rebalance_method_display()),
        ("Commission / slippage (bps)", f"{float(p.commission_bps):g} / {float(p.slippage_bps):g}"),
        ("Whole shares", "yes" if p.whole_shares else "no"),
        ("Config file", p.config_source or "–"),
    ]
    return Table("Portfolio settings", ["Setting", "Value"], [list(r) for r in rows])
