"""Plotly figure builders for the dashboard: pure functions, data in, figure dict out.

No Django, no database, no maths beyond laying numbers out (the numbers come from
``reporting.engine`` or the stored snapshots). Each builder returns a plain dict with the
keys ``data`` and ``layout`` that Plotly.newPlot takes, plus ``caption`` (text shown under
the chart, e.g. how it was downsampled) and, for the correlation heatmap, ``scatter`` (the
returns the click-through scatter draws). Long daily series go through
``reporting.engine.downsample.decimate`` to at most ``MAX_POINTS`` rows per figure, so a
32-year history ships kilobytes, not megabytes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reporting.engine.downsample import decimate

MAX_POINTS = 2000
SECONDARY_POINTS = 1000  # for the smaller panels that sit several to a page
MAX_MARKERS = 1000
SIGNIFICANT_DIGITS = 8
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
PORTFOLIO_COLOR = "#101828"
BENCHMARK_COLOR = "#98a2b3"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _dates(index) -> list[str]:
    return pd.DatetimeIndex(index).strftime("%Y-%m-%d").tolist()


def _floats(values, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """C-contiguous float64 array (orjson serializes it natively; NaN becomes null, a gap
    in the line), rounded to ``digits`` significant digits of its largest magnitude: the
    page ships "0.01234568", not "0.012345678901234567"."""
    v = np.ascontiguousarray(values, dtype=float)
    finite = np.abs(v[np.isfinite(v)])
    if finite.size == 0 or finite.max() == 0:
        return v
    decimals = max(0, digits - 1 - int(math.floor(math.log10(finite.max()))))
    return np.round(v, decimals)


def _layout(title: str, **extra) -> dict:
    layout = {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"l": 55, "r": 15, "t": 40, "b": 40},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.15},
        "autosize": True,
    }
    layout.update(extra)
    return layout


def downsample(frame: pd.DataFrame, max_points: int = MAX_POINTS) -> tuple[pd.DataFrame, str]:
    """(rows of ``frame`` kept by ``decimate``, caption saying how many were kept)."""
    n = len(frame)
    k = max(frame.shape[1], 1)
    limit = max(max_points, 2 + 2 * k)
    if n <= limit:
        return frame, f"{n:,} daily points, all drawn." if n else "No data yet."
    kept = decimate(frame, limit)
    caption = (
        f"{n:,} daily points downsampled to {len(kept):,} (decimate: each bucket's first, "
        f"last, minimum and maximum kept, so peaks and troughs survive)."
    )
    return kept, caption


def lines_figure(
    frame: pd.DataFrame,
    title: str,
    *,
    yformat: str = "",
    ytitle: str = "",
    widths: dict[str, float] | None = None,
    hlines: dict[str, float] | None = None,
    max_points: int = MAX_POINTS,
) -> dict:
    """One line per column of ``frame`` (DatetimeIndex), downsampled together. ``widths``
    overrides a column's line width; ``hlines`` draws labelled horizontal lines."""
    kept, caption = downsample(frame, max_points)
    x = _dates(kept.index)
    data = []
    for i, column in enumerate(kept.columns):
        width = (widths or {}).get(column, 1.5)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": str(column),
                "x": x,
                "y": _floats(kept[column]),
                "line": {"width": width, "color": COLORS[i % len(COLORS)]},
                "hovertemplate": f"%{{y:{yformat or '.4g'}}}",
            }
        )
    shapes, annotations = _hlines(hlines or {})
    layout = _layout(
        title,
        yaxis={"tickformat": yformat, "title": {"text": ytitle}},
        shapes=shapes,
        annotations=annotations,
    )
    return {"data": data, "layout": layout, "caption": caption}


def _hlines(lines: dict[str, float]) -> tuple[list[dict], list[dict]]:
    shapes, annotations = [], []
    for label, y in lines.items():
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": y,
                "y1": y,
                "line": {"color": "#b42318", "dash": "dash", "width": 1},
            }
        )
        annotations.append(
            {"xref": "paper", "x": 1, "y": y, "text": label, "showarrow": False, "yshift": 8}
        )
    return shapes, annotations


def equity_curve_figure(
    portfolio: pd.Series,
    strategies: pd.DataFrame,
    benchmark: pd.Series | None,
    rebalances: pd.DataFrame,
) -> dict:
    """Portfolio equity (thick), each strategy book's equity (thin, toggle in the legend),
    the benchmark rebased to the portfolio's first equity (``benchmark`` already rebased,
    on any dates: it is aligned to the portfolio's) and a marker at each rebalance
    (``rebalances``: date, trigger, capital_moved)."""
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
        events = rebalances.tail(MAX_MARKERS)
        at = pd.DatetimeIndex(events["date"])
        # two rebalances can share a bar (a liquidation's recovery and the monthly one)
        y = portfolio.reindex(portfolio.index.union(at.unique())).ffill().reindex(at)
        text = [
            f"rebalance ({t}): {m:,.0f} moved"
            for t, m in zip(events["trigger"], events["capital_moved"], strict=True)
        ]
        fig["data"].append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "Rebalances",
                "x": _dates(at),
                "y": _floats(y),
                "text": text,
                "hovertemplate": "%{text}",
                "marker": {"symbol": "triangle-up", "size": 5, "color": "#f79009", "opacity": 0.6},
            }
        )
        fig["caption"] += f" Triangles: {len(events):,} rebalances."
    fig["layout"]["updatemenus"] = [
        {
            "type": "buttons",
            "direction": "left",
            "x": 0,
            "y": 1.12,
            "showactive": True,
            "buttons": [
                {"label": "Linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
                {"label": "Log", "method": "relayout", "args": [{"yaxis.type": "log"}]},
            ],
        }
    ]
    return fig


def drawdown_figure(drawdown: pd.DataFrame, title: str = "Drawdown") -> dict:
    """Drawdown curves (negative fractions), the first column filled to zero."""
    fig = lines_figure(drawdown, title, yformat=".1%")
    if fig["data"]:
        fig["data"][0]["fill"] = "tozeroy"
        fig["data"][0]["line"]["color"] = "#b42318"
    return fig


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
                "hovertemplate": f"%{{label}}: %{{value:{hover_format}}} (%{{percent}})"
                "<extra></extra>",
            }
        ],
        "layout": _layout(title, hovermode="closest", showlegend=False),
        "caption": "",
    }


def gauge_figure(title: str, value: float | None, limit: float | None, *, fmt: str) -> dict:
    """A gauge of ``value`` with a red threshold at ``limit`` ("no limit" when None).
    ``fmt`` is a d3 format for both (".2f", ".1%")."""
    top = max(x for x in (value or 0.0, limit or 0.0, 1e-9) if x is not None)
    gauge = {
        "axis": {"range": [0, top * 1.3], "tickformat": fmt},
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
        "layout": {"margin": {"l": 25, "r": 25, "t": 60, "b": 10}, "height": 230},
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


def bars_figure(
    frame: pd.DataFrame,
    title: str,
    *,
    yformat: str = "",
    barmode: str = "group",
    hlines: dict[str, float] | None = None,
    horizontal: bool = False,
) -> dict:
    """One bar trace per column of ``frame`` over its index (categories or dates)."""
    categories = (
        _dates(frame.index)
        if isinstance(frame.index, pd.DatetimeIndex)
        else [str(i) for i in frame.index]
    )
    data = []
    for i, column in enumerate(frame.columns):
        values = _floats(frame[column])
        trace = {
            "type": "bar",
            "name": str(column),
            "marker": {"color": COLORS[i % len(COLORS)]},
            "hovertemplate": f"%{{fullData.name}}: %{{{'x' if horizontal else 'y'}:"
            f"{yformat or '.4g'}}}<extra></extra>",
        }
        if horizontal:
            trace.update(orientation="h", x=values, y=categories)
        else:
            trace.update(x=categories, y=values)
        data.append(trace)
    shapes, annotations = _hlines(hlines or {})
    axis = {"tickformat": yformat}
    layout = _layout(
        title,
        barmode=barmode,
        hovermode="closest",
        shapes=shapes,
        annotations=annotations,
        **({"xaxis": axis} if horizontal else {"yaxis": axis}),
    )
    return {"data": data, "layout": layout, "caption": ""}


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


def histogram_figure(
    values: pd.Series,
    title: str,
    *,
    bins: int = 50,
    xformat: str = ".1%",
    normal: bool = True,
    clip: float | None = None,
) -> dict:
    """Counts in ``bins`` equal bins (computed here, so the page ships counts, not every
    value) and, with ``normal``, the normal density with the sample's mean and std
    (ddof=1) scaled to counts: n x bin width x pdf(x). ``clip`` (e.g. 0.01) bins only the
    values between the clip and 1 - clip quantiles, and says how many fell outside."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"data": [], "layout": _layout(title), "caption": "No data yet."}
    outside = 0
    if clip:
        lo, hi = np.quantile(v, [clip, 1 - clip])
        outside = int(((v < lo) | (v > hi)).sum())
        v_all, v = v, v[(v >= lo) & (v <= hi)]
    counts, edges = np.histogram(v, bins=min(bins, max(len(v), 1)))
    centers = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
    data = [
        {
            "type": "bar",
            "name": "count",
            "x": centers,
            "y": counts,
            "width": width,
            "marker": {"color": COLORS[0]},
            "customdata": np.column_stack((edges[:-1], edges[1:])),
            "hovertemplate": f"%{{customdata[0]:{xformat}}} to %{{customdata[1]:{xformat}}}: "
            "%{y}<extra></extra>",
        }
    ]
    caption = f"{len(v):,} values in {len(counts)} bins."
    if outside:
        caption += f" {outside:,} values beyond the {clip:.0%}-{1 - clip:.0%} quantiles not drawn."
    sample = v_all if clip else v
    if normal and len(sample) > 1:
        mean, sd = float(np.mean(sample)), float(np.std(sample, ddof=1))
        if sd > 0:
            x = np.linspace(edges[0], edges[-1], 200)
            pdf = np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "normal (same mean, std)",
                    "x": x,
                    "y": pdf * len(sample) * width,
                    "line": {"color": "#b42318", "width": 1.5},
                    "hoverinfo": "skip",
                }
            )
            caption += f" Mean {mean:{xformat}}, std {sd:{xformat}}."
    layout = _layout(title, hovermode="closest", bargap=0.02, xaxis={"tickformat": xformat})
    return {"data": data, "layout": layout, "caption": caption}


def monthly_heatmap_figure(table: pd.DataFrame, breakdown: dict[str, pd.DataFrame]) -> dict:
    """Years x months heatmap of ``table`` (``performance.monthly_returns_table``); the
    hover of each cell lists each strategy's return that month from ``breakdown`` (one
    such table per strategy)."""
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
                "colorscale": "RdYlGn",
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


def markers_figure(line: pd.Series, name: str, markers: list[dict], title: str) -> dict:
    """``line`` (downsampled) with marker traces on top. Each marker dict has name, dates,
    y, text, symbol and color; the most recent ``MAX_MARKERS`` of each are drawn."""
    fig = lines_figure(line.to_frame(name), title, yformat=",.2f")
    shown = []
    for m in markers:
        dates = pd.DatetimeIndex(m["dates"])
        keep = slice(max(len(dates) - MAX_MARKERS, 0), None)
        fig["data"].append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": m["name"],
                "x": _dates(dates[keep]),
                "y": _floats(m["y"])[keep],
                "text": list(m["text"])[keep],
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"symbol": m["symbol"], "color": m["color"], "size": 7},
            }
        )
        shown.append(f"{min(len(dates), MAX_MARKERS):,} of {len(dates):,} {m['name'].lower()}")
    if shown:
        fig["caption"] += " Markers: " + "; ".join(shown) + " (most recent kept)."
    fig["layout"]["hovermode"] = "closest"
    return fig


# --- strategy page panels (issue 14) ---


def signal_overlay_figure(
    frame: pd.DataFrame,
    *,
    top: list[str],
    panels: list[dict],
    markers: list[dict],
    title: str,
    names: dict[str, str] | None = None,
) -> dict:
    """A ticker's close with what its signal decides from, fills marked, downsampled
    together. ``frame`` (DatetimeIndex): one column per series; ``top`` the columns drawn
    over the price axis (the close first); ``panels`` one stacked subplot each below it,
    dicts with ``column``, ``title``, ``levels`` ({label: y}, dashed lines: thresholds),
    optional ``reversed`` (rank 1 on top) and ``format``. Each trace's ``meta`` is its
    column name, its legend name ``names[column]`` (default the column). ``markers`` as
    ``markers_figure`` takes them (the most recent ``MAX_MARKERS`` drawn, at their y on
    the price axis)."""
    kept, caption = downsample(frame)
    x = _dates(kept.index)
    bottom_of_top = (PANEL_SHARE + PANEL_GAP) * len(panels)
    layout = _layout(title, hovermode="x unified", shapes=[], annotations=[])
    layout["yaxis"] = {"domain": [bottom_of_top, 1.0], "tickformat": ",.2f", "automargin": True}
    layout["xaxis"] = {"anchor": "y" if not panels else f"y{len(panels) + 1}"}
    data = []
    for i, column in enumerate(top):
        line = _overlay_line(x, kept[column], column, "y", COLORS[i % len(COLORS)])
        line["name"] = (names or {}).get(column, column)
        data.append(line)
    for j, panel in enumerate(panels):
        axis = f"y{j + 2}"
        top_edge = bottom_of_top - PANEL_GAP - j * (PANEL_SHARE + PANEL_GAP)
        layout[f"yaxis{j + 2}"] = {
            "domain": [round(max(top_edge - PANEL_SHARE, 0.0), 6), round(top_edge, 6)],
            "title": {"text": panel["title"]},
            "automargin": True,
            "tickformat": panel.get("format", ""),
            **({"autorange": "reversed"} if panel.get("reversed") else {}),
        }
        color = COLORS[(len(top) + j) % len(COLORS)]
        data.append(_overlay_line(x, kept[panel["column"]], panel["column"], axis, color))
        data[-1]["name"] = panel["title"]
        for label, y in panel.get("levels", {}).items():
            _level_line(layout, axis, label, y)
    for m in markers:
        dates = pd.DatetimeIndex(m["dates"])
        keep = slice(max(len(dates) - MAX_MARKERS, 0), None)
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": m["name"],
                "meta": m["name"].lower(),
                "x": _dates(dates[keep]),
                "y": _floats(m["y"])[keep],
                "text": list(m["text"])[keep],
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"symbol": m["symbol"], "color": m["color"], "size": 7},
                "yaxis": "y",
            }
        )
        shown = min(len(dates), MAX_MARKERS)
        caption += f" {m['name']}: {shown:,} of {len(dates):,} fill dates (most recent kept)."
    return {"data": data, "layout": layout, "caption": caption}


PANEL_GAP, PANEL_SHARE = 0.06, 0.26  # of the plot height, per lower panel


def _level_line(layout: dict, axis: str, label: str, y: float) -> None:
    """A dashed threshold line across the panel of ``axis``, labelled at its right end."""
    layout["shapes"].append(
        {
            "type": "line",
            "xref": "paper",
            "yref": axis,
            "x0": 0,
            "x1": 1,
            "y0": y,
            "y1": y,
            "line": {"color": "#b42318", "dash": "dash", "width": 1},
        }
    )
    layout["annotations"].append(
        {
            "xref": "paper",
            "yref": axis,
            "x": 1,
            "y": y,
            "xanchor": "right",
            "text": f"{label} ({y:g})",
            "showarrow": False,
            "yshift": 8,
            "font": {"size": 10},
        }
    )


def _overlay_line(x: list[str], values: pd.Series, column: str, axis: str, color: str) -> dict:
    return {
        "type": "scatter",
        "mode": "lines",
        "name": str(column),
        "meta": str(column),
        "x": x,
        "y": _floats(values),
        "yaxis": axis,
        "line": {"width": 1.5, "color": color},
        "hovertemplate": "%{y:.4g}",
    }
