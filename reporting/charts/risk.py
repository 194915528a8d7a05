"""Risk and allocation figures: allocation pies and stacked areas, gauges (volatility
against its target and limit), the correlation heatmap and band, risk contributions and
their decomposition, and the VaR interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reporting.charts.common import (
    COLORS,
    GAUGE_SIDE_MARGIN,
    MAX_POINTS,
    PORTFOLIO_COLOR,
    SECONDARY_POINTS,
    _dates,
    _floats,
    _layout,
    bars_figure,
    downsample,
    lines_figure,
)


def pie_figure(values: pd.Series, title: str, *, hover_format: str = ",.0f") -> dict:
    """A pie of non-negative ``values`` (index = labels), share and value on hover."""
    return {
        "data": [
            {
                "type": "pie",
                "labels": [str(i) for i in values.index],
                "values": _floats(values),
                "hole": 0.45,
                "sort": False,
                "textinfo": "label+percent",
                "automargin": True,  # outside labels ("Consumer Discretionary") never cut
                "hovertemplate": f"%{{label}}: %{{value:{hover_format}}} (%{{percent}})"
                "<extra></extra>",
            }
        ],
        "layout": _layout(title, hovermode="closest", showlegend=False),
        "caption": "",
    }


def gauge_figure(title: str, value: float | None, limit: float | None, *, fmt: str) -> dict:
    """A gauge of ``value`` with a red threshold at ``limit`` ("no limit" when None).
    ``fmt`` is a d3 format for both (".2f", ".1%"). The side margins leave room for the
    end ticks' labels, which Plotly centres on the arc's ends (25 px cut "0.00" to ".00")."""
    top = max(x for x in (value or 0.0, limit or 0.0, 1e-9) if x is not None)
    gauge = {
        "axis": {"range": [0, top * 1.3], "tickformat": fmt, "nticks": 6},
        "bar": {"color": PORTFOLIO_COLOR},
    }
    if limit is not None:
        gauge["threshold"] = {"line": {"color": "#b42318", "width": 4}, "value": limit}
        gauge["steps"] = [{"range": [limit, top * 1.3], "color": "#fee4e2"}]
    subtitle = "no limit" if limit is None else f"limit {_fmt(limit, fmt)}"
    return {
        "data": [
            {
                "type": "indicator",
                "mode": "gauge+number",
                "value": math.nan if value is None else value,
                "number": {"valueformat": fmt},
                "title": {"text": f"{title}<br><span style='font-size:12px'>{subtitle}</span>"},
                "gauge": gauge,
            }
        ],
        "layout": {
            "margin": {"l": GAUGE_SIDE_MARGIN, "r": GAUGE_SIDE_MARGIN, "t": 70, "b": 10},
            "height": 230,
        },
        "caption": "",
    }


def _fmt(x: float, fmt: str) -> str:
    return f"{x:.1%}" if fmt.endswith("%") else f"{x:.2f}"


def correlation_figure(
    corr: pd.DataFrame, returns: pd.DataFrame, threshold: float | None, window: int
) -> dict:
    """Heatmap of a correlation matrix; ``returns`` (the window's daily returns) ride
    along in ``scatter`` for the click-through scatter plot."""
    names = [str(c) for c in corr.columns]
    z = corr.to_numpy(dtype=float)
    fig = {
        "data": [
            {
                "type": "heatmap",
                "x": names,
                "y": names,
                "z": z,
                "zmin": -1,
                "zmax": 1,
                "colorscale": "RdBu",
                "reversescale": True,
                "text": [[f"{v:.2f}" for v in row] for row in z],
                "texttemplate": "%{text}",
                "hovertemplate": "%{y} vs %{x}: %{z:.3f}<extra></extra>",
            }
        ],
        "layout": _layout(
            f"Strategy return correlation, last {window} days",
            hovermode="closest",
            yaxis={"autorange": "reversed"},
            height=_heatmap_height(len(names)),
        ),
        "caption": "Click a cell for the scatter of the two strategies' daily returns.",
        "scatter": {
            "dates": _dates(returns.index),
            "returns": {str(c): _floats(returns[c]) for c in returns.columns},
        },
    }
    if threshold is not None:
        fig["caption"] += f" Alert threshold: {threshold:.2f}."
    return fig


def _heatmap_height(rows: int) -> int:
    """px: 44 a row plus the title, colour bar and rotated category labels below, so a
    small matrix is not stretched over a fixed-height box."""
    return max(240, 44 * rows + 170)


def risk_contribution_figure(contributions: pd.Series) -> dict:
    """Each strategy's risk contribution: a pie of the shares of portfolio volatility when
    every contribution is >= 0, bars otherwise (a hedge contributes negatively, which a
    pie cannot show)."""
    total = float(contributions.sum())
    title = "Risk contribution to portfolio volatility"
    if (contributions >= 0).all() and total > 0:
        fig = pie_figure(contributions, title, hover_format=".2%")
    else:
        fig = bars_figure(pd.DataFrame({"risk contribution": contributions}), title, yformat=".2%")
    fig["caption"] = f"Contributions sum to the portfolio volatility, {total:.2%} a year."
    return fig


def stacked_area_figure(
    frame: pd.DataFrame, total: pd.Series, title: str, *, max_points: int = MAX_POINTS
) -> dict:
    """Columns of ``frame`` stacked (Plotly stackgroup) with ``total`` as a line on top:
    for contributions that add up, the line is the stack's sum."""
    both = frame.copy()
    both["Portfolio"] = total
    kept, caption = downsample(both, max_points)
    x = _dates(kept.index)
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": str(c),
            "x": x,
            "y": _floats(kept[c]),
            "stackgroup": "contributions",
            "line": {"width": 0.5, "color": COLORS[i % len(COLORS)]},
            "hovertemplate": "%{y:.2%}",
        }
        for i, c in enumerate(frame.columns)
    ]
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Portfolio",
            "x": x,
            "y": _floats(kept["Portfolio"]),
            "line": {"width": 2, "color": PORTFOLIO_COLOR},
            "hovertemplate": "%{y:.2%}",
        }
    )
    layout = _layout(title, yaxis={"tickformat": ".0%"})
    return {"data": data, "layout": layout, "caption": caption}


def correlation_band_figure(
    band: pd.DataFrame,
    pairs: pd.DataFrame | None,
    title: str,
    *,
    max_points: int = SECONDARY_POINTS,
) -> dict:
    """The average pairwise correlation (``band`` column mean) inside its min-max band
    (shaded), plus one thin line per pair when ``pairs`` is given (a handful at most)."""
    frame = band[["max", "min", "mean"]].rename(
        columns={"max": "highest pair", "min": "lowest to highest pair", "mean": "average of pairs"}
    )
    if pairs is not None:
        frame = pd.concat([frame, pairs], axis=1)
    fig = lines_figure(frame, title, yformat=".2f", max_points=max_points)
    high, low, mean = fig["data"][:3]
    high.update(line={"width": 0, "color": "#84adff"}, showlegend=False)
    low["line"] = {"width": 0, "color": "#84adff"}
    low.update(fill="tonexty", fillcolor="rgba(132,173,255,0.3)")
    mean["line"] = {"width": 2.5, "color": PORTFOLIO_COLOR}
    for trace in fig["data"][3:]:
        trace["line"]["width"] = 1.0
    fig["layout"]["yaxis"]["range"] = [-1, 1]
    return fig


# --- risk page panels (issue 14) ---


def risk_decomposition_figure(contributions: pd.Series, marginal: pd.Series) -> dict:
    """Two bar panels over the strategies: on top each one's share of portfolio volatility
    (``contributions / their sum``, summing to 100 %), below its marginal contribution
    ``d sigma / d w_i`` (annualized; NaN bars are left out). Bars, not the spec's pie: a
    hedge's negative share and the marginal figure cannot be drawn as slices."""
    names = [str(n) for n in contributions.index]
    total = float(contributions.sum())
    share = contributions / total if total else contributions * math.nan
    bar = {"type": "bar", "x": names, "hovertemplate": "%{x}: %{y:.2%}<extra></extra>"}
    data = [
        bar | {"y": _floats(share), "name": "share of portfolio vol", "yaxis": "y"},
        bar
        | {
            "y": _floats(marginal.reindex(contributions.index)),
            "name": "marginal contribution",
            "yaxis": "y2",
            "xaxis": "x2",
            "marker": {"color": COLORS[1]},
        },
    ]
    data[0]["marker"] = {"color": COLORS[0]}
    layout = _layout(
        "Risk decomposition",
        hovermode="closest",
        height=420,
        showlegend=False,
        yaxis={"domain": [0.58, 1.0], "tickformat": ".0%", "title": {"text": "share"}},
        yaxis2={"domain": [0.0, 0.36], "tickformat": ".1%", "title": {"text": "d\u03c3/dw"}},
        xaxis={"anchor": "y", "automargin": True, "showticklabels": False},
        xaxis2={"anchor": "y2", "automargin": True, "matches": "x"},
    )
    caption = f"Shares sum to 100 % of the portfolio volatility, {total:.2%} a year."
    return {"data": data, "layout": layout, "caption": caption}


def var_interval_figure(history: pd.DataFrame, rows: list[dict], coverage: float) -> dict:
    """The VaR / CVaR history (one line per column of ``history``) and, at its last date,
    each current value with its ``coverage`` interval as error bars (``rows``: ``level``,
    ``var``, ``cvar`` and their ``*_low`` / ``*_high``, None for an unbounded end, drawn
    as an arrow-less bar up to the top of the plot and said in the caption)."""
    fig = lines_figure(
        history, "VaR / CVaR (1 day, fraction of equity) with intervals", yformat=".2%"
    )
    if history.empty or not rows or "var_low" not in rows[0]:
        return fig
    x = _dates(history.index[-1:])
    top = float(np.nanmax(history.to_numpy(dtype=float))) if history.size else 0.0
    open_ended = []
    line_colors = {t["name"]: t["line"]["color"] for t in fig["data"]}
    for i, row in enumerate(r | {"kind": k} for r in rows for k in ("var", "cvar")):
        value, low, high = row[row["kind"]], row[f"{row['kind']}_low"], row[f"{row['kind']}_high"]
        if value is None or low is None:
            continue
        label = f"{'CVaR' if row['kind'] == 'cvar' else 'VaR'} {row['level']}%"
        if high is None:
            open_ended.append(label)
        top = max(top, value if high is None else high)
        plus = (top * 1.15 if high is None else high) - value
        color = line_colors.get(label, COLORS[i % len(COLORS)])
        fig["data"].append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{label} now",
                "x": x,
                "y": [value],
                "marker": {"color": color, "size": 8, "symbol": "diamond"},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [plus],
                    "arrayminus": [value - low],
                    "color": color,
                },
                "hovertemplate": f"{label}: %{{y:.2%}} [{low:.2%}, "
                + ("unbounded" if high is None else f"{high:.2%}")
                + "]<extra></extra>",
            }
        )
    fig["caption"] += (
        f" Markers at the last close: the current values with their {coverage:.0%} intervals."
    )
    if open_ended:
        fig["caption"] += f" Unbounded above (bar to the top): {', '.join(open_ended)}."
    return fig


def volatility_gauge_figure(value: float | None, target: float | None, limit: float | None) -> dict:
    """A gauge of the portfolio volatility with its target as a green band edge and
    marker (``target``, "no target configured" when None) and the limit as the red
    threshold with the red zone above it ("no limit" when None)."""
    fig = gauge_figure("Volatility", value, limit, fmt=".1%")
    trace = fig["data"][0]
    gauge = trace["gauge"]
    top = max(x for x in (value or 0.0, limit or 0.0, target or 0.0, 1e-9)) * 1.3
    gauge["axis"]["range"] = [0, top]
    steps = [s | {"range": [s["range"][0], top]} for s in gauge.get("steps", [])]
    if target is not None:
        steps.insert(0, {"range": [0, target], "color": "#d1fadf"})
        trace["delta"] = {"reference": target, "valueformat": ".1%"}
        trace["mode"] = "gauge+number+delta"
    gauge["steps"] = steps
    target_text = "no target configured" if target is None else f"target {target:.1%} (green)"
    limit_text = "no limit" if limit is None else f"limit {limit:.1%} (red)"
    trace["title"]["text"] = (
        f"Volatility<br><span style='font-size:12px'>{target_text}; {limit_text}</span>"
    )
    return fig
