"""Equity, drawdown and return figures: the equity curve with its benchmark and rebalance
rug, the drawdown line, the growth of 1 with shaded drawdown periods, and the monthly
returns heatmap.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reporting.charts.common import (
    BENCHMARK_COLOR,
    EVENT_COLOR,
    GAIN_LOSS_SCALE,
    MAX_MARKERS,
    MAX_POINTS,
    MONTHS,
    PORTFOLIO_COLOR,
    RUG_HEIGHT,
    _dates,
    _layout,
    lines_figure,
)


def equity_curve_figure(
    portfolio: pd.Series,
    strategies: pd.DataFrame,
    benchmark: pd.Series | None,
    rebalances: pd.DataFrame,
) -> dict:
    """Portfolio equity (thick), each strategy book's equity (thin, toggle in the legend),
    the benchmark rebased to the portfolio's first equity (``benchmark`` already rebased,
    on any dates: it is aligned to the portfolio's) and a thin tick along the bottom of the
    plot at each rebalance (``rebalances``: date, trigger, capital_moved), in a colour no
    series uses, on its own hidden 0-1 axis so the ticks never cover a line (hundreds of
    markers on the portfolio line hid it)."""
    frame = pd.DataFrame({"Portfolio": portfolio})
    for name in strategies.columns:
        frame[name] = strategies[name].reindex(frame.index)
    has_benchmark = benchmark is not None and not benchmark.empty
    if has_benchmark:
        frame["S&P 500 (rebased)"] = benchmark.reindex(frame.index).ffill()
    widths = {"Portfolio": 2.5} | {name: 1.0 for name in strategies.columns}
    fig = lines_figure(frame, "Equity", yformat=",.0f", ytitle="equity", widths=widths)
    fig["data"][0]["line"]["color"] = PORTFOLIO_COLOR
    if has_benchmark:
        fig["data"][-1]["line"] = {"width": 1.2, "color": BENCHMARK_COLOR, "dash": "dot"}
    if len(rebalances):
        _add_rebalance_rug(fig, portfolio, rebalances)
    fig["layout"]["updatemenus"] = [_linear_log_menu()]
    return fig


def _add_rebalance_rug(fig: dict, portfolio: pd.Series, rebalances: pd.DataFrame) -> None:
    """Adds to ``fig`` a tick per rebalance (the last ``MAX_MARKERS`` rows of
    ``rebalances``: date, trigger, capital_moved), hover text with the portfolio equity
    on its bar, on a hidden 0-1 axis ``y2`` in a strip of ``RUG_HEIGHT`` of the plot under
    the lines, and counts them in the caption."""
    events = rebalances.tail(MAX_MARKERS)
    at = pd.DatetimeIndex(events["date"])
    # two rebalances can share a bar (a liquidation's recovery and the monthly one)
    on = portfolio.reindex(portfolio.index.union(at.unique())).ffill().reindex(at)
    text = [
        f"rebalance ({t}): {m:,.0f} moved, equity {e:,.0f}"
        for t, m, e in zip(events["trigger"], events["capital_moved"], on, strict=True)
    ]
    fig["data"].append(_rug_trace(at, text))
    # the ticks' own strip between the plot and the date axis
    fig["layout"]["yaxis"]["domain"] = [RUG_HEIGHT, 1]
    fig["layout"]["yaxis2"] = {
        "domain": [0, RUG_HEIGHT * 0.8],
        "range": [0, 1],
        "visible": False,
        "fixedrange": True,
    }
    fig["layout"]["xaxis"]["anchor"] = "y2"
    fig["caption"] += f" Ticks along the bottom: {len(events):,} rebalances."


def _rug_trace(at: pd.DatetimeIndex, text: list[str]) -> dict:
    """The rebalance ticks: a vertical line marker at y 0.5 of axis ``y2`` per date of
    ``at``, in ``EVENT_COLOR``, ``text`` on hover."""
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "Rebalances",
        "x": _dates(at),
        "y": np.full(len(at), 0.5),
        "yaxis": "y2",
        "text": text,
        "hovertemplate": "%{text}<extra></extra>",
        "marker": {
            "symbol": "line-ns-open",
            "size": 10,
            "color": EVENT_COLOR,
            "line": {"width": 1, "color": EVENT_COLOR},
            "opacity": 0.7,
        },
    }


def _linear_log_menu() -> dict:
    """Linear / Log buttons at the top right that switch the y axis's type."""
    return {
        "type": "buttons",
        "direction": "left",
        "x": 1,
        "xanchor": "right",
        "y": 1,
        "yanchor": "bottom",
        "pad": {"b": 4},
        "showactive": True,
        "buttons": [
            {"label": "Linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
            {"label": "Log", "method": "relayout", "args": [{"yaxis.type": "log"}]},
        ],
    }


def drawdown_figure(drawdown: pd.DataFrame, title: str = "Drawdown") -> dict:
    """Drawdown curves (negative fractions), the first column filled to zero."""
    fig = lines_figure(drawdown, title, yformat=".1%")
    if fig["data"]:
        fig["data"][0]["fill"] = "tozeroy"
        fig["data"][0]["line"]["color"] = "#b42318"
    return fig


def monthly_heatmap_figure(table: pd.DataFrame, breakdown: dict[str, pd.DataFrame]) -> dict:
    """Years x months heatmap of ``table`` (``performance.monthly_returns_table``); the
    hover of each cell lists each strategy's return that month from ``breakdown`` (one
    such table per strategy). Gains in the site's gain colour, losses in its loss colour,
    zero neutral, on a scale symmetric around zero (Plotly.js has no "RdYlGn": the named
    scale fell back to one that drew gains red)."""
    months = list(MONTHS)
    z = table.reindex(columns=months).to_numpy(dtype=float)
    years = [int(y) for y in table.index]
    hover = []
    for year in years:
        row = []
        for month in months:
            parts = []
            for name, t in breakdown.items():
                value = t[month].get(year, math.nan) if month in t.columns else math.nan
                if np.isfinite(value):
                    parts.append(f"{name}: {value:+.2%}")
            row.append("<br>".join(parts) or "no strategy data")
        hover.append(row)
    finite = np.abs(z[np.isfinite(z)])
    bound = float(np.quantile(finite, 0.98)) if finite.size else 0.05
    fig = {
        "data": [
            {
                "type": "heatmap",
                "x": months,
                "y": [str(y) for y in years],
                "z": z,
                "zmid": 0,
                "zmin": -bound,
                "zmax": bound,
                "colorscale": GAIN_LOSS_SCALE,
                "customdata": hover,
                "hovertemplate": "%{y} %{x}: %{z:.2%}<br>%{customdata}<extra></extra>",
                "colorbar": {"tickformat": ".0%"},
            }
        ],
        "layout": _layout(
            "Monthly returns",
            hovermode="closest",
            yaxis={"autorange": "reversed", "type": "category"},
            height=max(300, 18 * len(years) + 80),
        ),
        "caption": "Portfolio return per month; hover a cell for each strategy's return "
        "that month. Colours saturate at the 98th percentile of |return|.",
    }
    return fig


# --- performance/overview panels (issue 14) ---

DRAWDOWN_FILL = "#d92d20"


def _drawdown_rects(drawdowns: pd.DataFrame, last: pd.Timestamp) -> tuple[list, list]:
    """A shaded rectangle per row of ``drawdowns`` (``engine.performance.drawdown_periods``:
    from the peak, or the first day under water when the peak is the start, to the
    recovery, or to ``last`` when not recovered), numbered by depth rank at the top."""
    shapes, annotations = [], []
    for rank, row in enumerate(drawdowns.itertuples(index=False), start=1):
        x0 = row.start if pd.isna(row.peak) else row.peak
        x1 = last if pd.isna(row.recovery) else row.recovery
        x0, x1 = _dates([x0])[0], _dates([x1])[0]
        shapes.append(
            {
                "type": "rect",
                "name": f"drawdown {rank}",
                "xref": "x",
                "yref": "paper",
                "x0": x0,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "fillcolor": DRAWDOWN_FILL,
                "opacity": 0.10,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        annotations.append(
            {
                "xref": "x",
                "yref": "paper",
                "x": x0,
                "y": 1,
                "xanchor": "left",
                "text": str(rank),
                "showarrow": False,
                "font": {"size": 10, "color": DRAWDOWN_FILL},
                "hovertext": f"drawdown {rank}: {row.depth:.1%}, {x0} to {x1}",
            }
        )
    return shapes, annotations


def growth_figure(
    growth: pd.DataFrame, drawdowns: pd.DataFrame, title: str, *, max_points: int = MAX_POINTS
) -> dict:
    """Growth of 1 invested, 1 + cumulative return, one line per column (the first, the
    portfolio, thick) on a log y-axis (equal heights are equal percentage moves; a
    Linear/Log toggle switches it), with the portfolio's drawdown periods shaded."""
    fig = lines_figure(
        growth, title, yformat=".2f", widths={growth.columns[0]: 2.5}, max_points=max_points
    )
    if fig["data"]:
        fig["data"][0]["line"]["color"] = PORTFOLIO_COLOR
    shapes, annotations = _drawdown_rects(drawdowns, growth.index[-1])
    fig["layout"]["yaxis"].update(type="log", title={"text": "growth of 1 (log)"})
    fig["layout"]["shapes"] = shapes
    fig["layout"]["annotations"] = annotations
    fig["layout"]["updatemenus"] = [
        {
            "type": "buttons",
            "direction": "left",
            "x": 0,
            "y": 1.12,
            "showactive": True,
            "active": 0,
            "buttons": [
                {"label": "Log", "method": "relayout", "args": [{"yaxis.type": "log"}]},
                {"label": "Linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
            ],
        }
    ]
    fig["caption"] += (
        f" Log scale by default. Shaded: the {len(shapes)} deepest drawdown periods of the "
        "table below, numbered by depth, from the peak to the recovery (or to today)."
    )
    return fig
