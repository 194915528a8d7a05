"""Plotly figure builders for the dashboard: pure functions, data in, figure dict out.

The one figure module of the dashboard, the static report and the notebook. No Django,
no database, no maths beyond laying numbers out (the numbers come from
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
import orjson
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
# The site's gain and loss colours (static/css/quantsite.css --up, --down) and a neutral
# grey for zero; events (rebalances) get a slate that no series uses.
GAIN_COLOR = "#067647"
LOSS_COLOR = "#b42318"
NEUTRAL_COLOR = "#f2f4f7"
EVENT_COLOR = "#475467"
GAIN_LOSS_SCALE = [[0.0, LOSS_COLOR], [0.5, NEUTRAL_COLOR], [1.0, GAIN_COLOR]]
RUG_HEIGHT = 0.06  # fraction of the plot height given to the rebalance ticks' strip
GAUGE_SIDE_MARGIN = 50  # px: room for a gauge's end tick labels ("130.0%")
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


# As django.utils.html.json_script: no "</script>", "<!--" or "&" can end the element.
_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def figure_json(figure: dict) -> str:
    """The figure as JSON (orjson; numpy arrays serialized natively, NaN as null), safe
    to place inside a ``<script type="application/json">`` element: every ``<``, ``>``
    and ``&`` is a \\u escape, and ``json.loads`` gives the same figure back. The one
    serializer of the dashboard's template tag and the static report."""
    text = orjson.dumps(figure, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)
    return text.decode().translate(_JSON_ESCAPES)


def _json_default(obj):
    """What orjson does not take natively: strided numpy arrays, pandas timestamps."""
    if isinstance(obj, np.ndarray):
        return np.ascontiguousarray(obj).tolist()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"cannot serialize {type(obj).__name__}")


def _layout(title: str, **extra) -> dict:
    """The shared layout. Every axis has ``automargin`` (the margins grow to fit tick
    labels and axis titles, so no label is clipped), and the title sits left-aligned just
    above the plot area, below the band where Plotly's mode bar floats (at 390 px a centred
    title in the top margin was hidden under it). Axis dicts in ``extra`` are merged into
    the defaults, not replaced."""
    layout = {
        "title": {
            "text": title,
            "font": {"size": 14},
            "x": 0,
            "xref": "container",
            "xanchor": "left",
            "pad": {"l": 8, "b": 10},
            "y": 1,
            "yref": "paper",
            "yanchor": "bottom",
            "automargin": True,
        },
        "margin": {"l": 10, "r": 10, "t": 60, "b": 10},  # t: the mode bar's band
        "xaxis": {"automargin": True},
        "yaxis": {"automargin": True},
        "hovermode": "x unified",
        # at the container's bottom, below the (rotated) category labels, never over them
        "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
        "autosize": True,
    }
    for key, value in extra.items():
        base = layout.get(key)
        if base is None and isinstance(value, dict) and key[1:5] == "axis":
            base = {"automargin": True}  # xaxis2, yaxis3 ...: the same default as the first
        layout[key] = base | value if isinstance(base, dict) and isinstance(value, dict) else value
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
            {
                "xref": "paper",
                "x": 1,
                "xanchor": "right",
                "y": y,
                "text": label,
                "showarrow": False,
                "yshift": 8,
            }
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
        events = rebalances.tail(MAX_MARKERS)
        at = pd.DatetimeIndex(events["date"])
        # two rebalances can share a bar (a liquidation's recovery and the monthly one)
        on = portfolio.reindex(portfolio.index.union(at.unique())).ffill().reindex(at)
        text = [
            f"rebalance ({t}): {m:,.0f} moved, equity {e:,.0f}"
            for t, m, e in zip(events["trigger"], events["capital_moved"], on, strict=True)
        ]
        fig["data"].append(
            {
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
        )
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
    fig["layout"]["updatemenus"] = [
        {
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


EYE_DIGITS = 4  # significant digits a chart needs: 1 in 10,000 of its range is < 1 px


def rounded_for_display(figure: dict, digits: int = EYE_DIGITS) -> dict:
    """``figure`` with every trace's numeric y rounded to ``digits`` significant digits of
    its largest magnitude (hover shows the same rounding): 1 in 10,000 of a linear axis's
    range, below a pixel. On a log axis a pixel is a ratio, not a distance, so there the
    digits are those of the trace's smallest positive magnitude: a growth of 1 that
    reached 300 keeps 1.041 apart from 0.952. The figure's other numbers are left alone.
    Cuts the page weight, not what anyone can see."""
    layout = figure.get("layout", {})
    for trace in figure.get("data", []):
        y = trace.get("y")
        if not isinstance(y, np.ndarray) or y.dtype.kind != "f":
            continue
        axis = "yaxis" + str(trace.get("yaxis", "y"))[1:]
        log = (layout.get(axis) or {}).get("type") == "log"
        finite = np.abs(y[np.isfinite(y)])
        finite = finite[finite > 0]
        if finite.size:
            size = finite.min() if log else finite.max()
            decimals = max(0, digits - 1 - int(math.floor(math.log10(size))))
            trace["y"] = np.round(y, decimals)
    return figure


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
    layout["xaxis"] = {"automargin": True, "anchor": "y" if not panels else f"y{len(panels) + 1}"}
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
