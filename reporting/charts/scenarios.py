"""Figures of the /scenarios/ page and the Risk page's stress panel: stress P&L paths,
per-strategy stress P&L, the Monte Carlo fan and distributions, the correlation regime
history and the walk-forward equity curves. Inputs are the stored ``ScenarioRun.result``
dicts (ISO dates, floats); nothing is computed here beyond laying them out."""

from __future__ import annotations

import pandas as pd

from reporting.charts.common import (
    COLORS,
    PORTFOLIO_COLOR,
    _floats,
    _hlines,
    _layout,
    bars_figure,
    lines_figure,
)


def stress_paths_figure(paths: dict[str, dict[str, float]], title: str) -> dict | None:
    """Cumulative portfolio P&L (money) of each window against the bars since its base
    (windows of different eras share one axis)."""
    if not paths:
        return None
    data = []
    for i, (label, pnl) in enumerate(paths.items()):
        dates = list(pnl)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": label,
                "x": list(range(len(dates))),
                "y": _floats(list(pnl.values())),
                "customdata": dates,
                "line": {"width": 1.5, "color": COLORS[i % len(COLORS)]},
                "hovertemplate": f"{label}<br>%{{customdata}}: %{{y:,.0f}}<extra></extra>",
            }
        )
    layout = _layout(
        title,
        xaxis={"title": {"text": "bars since the window's first bar"}},
        yaxis={"tickformat": ",.0f", "title": {"text": "P&L"}},
        hovermode="closest",
    )
    caption = "Today's books moved as each window's stored closes moved (day 0: P&L 0)."
    return {"data": data, "layout": layout, "caption": caption}


def stress_strategies_figure(rows: dict[str, dict[str, float]], title: str) -> dict | None:
    """Final P&L per strategy (bars) for each window or shock (categories)."""
    if not rows:
        return None
    frame = pd.DataFrame(rows).T.fillna(0.0)
    return bars_figure(frame, title, yformat=",.0f")


def fan_figure(fan: dict[str, list[float]], value0: float, title: str) -> dict | None:
    """Monte Carlo fan: the 5-95 % and 25-75 % bands of portfolio value per day and the
    median path. ``fan`` maps "p5", "p25", "p50", "p75", "p95" to horizon+1 values."""
    if not fan or "p50" not in fan:
        return None
    x = list(range(len(fan["p50"])))
    data = []
    for lo, hi, name, alpha in (("p5", "p95", "5-95 %", 0.15), ("p25", "p75", "25-75 %", 0.3)):
        if lo not in fan or hi not in fan:
            continue
        fill = f"rgba(31,119,180,{alpha})"
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": x,
                "y": _floats(fan[lo]),
                "line": {"width": 0},
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": x,
                "y": _floats(fan[hi]),
                "fill": "tonexty",
                "fillcolor": fill,
                "line": {"width": 0},
                "name": name,
                "hoverinfo": "skip",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "median",
            "x": x,
            "y": _floats(fan["p50"]),
            "line": {"width": 2, "color": PORTFOLIO_COLOR},
            "hovertemplate": "day %{x}: %{y:,.0f}<extra>median</extra>",
        }
    )
    shapes, annotations = _hlines({"today": value0})
    layout = _layout(
        title,
        xaxis={"title": {"text": "trading days ahead"}},
        yaxis={"tickformat": ",.0f", "title": {"text": "portfolio value"}},
        shapes=shapes,
        annotations=annotations,
        hovermode="closest",
    )
    return {"data": data, "layout": layout, "caption": ""}


def histogram_counts_figure(
    edges: list[float], counts: list[int], title: str, xformat: str, marker: float | None = None
) -> dict | None:
    """A histogram from stored bin edges and counts; ``marker`` a vertical line (a limit)."""
    if not counts:
        return None
    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
    data = [
        {
            "type": "bar",
            "x": centers,
            "y": counts,
            "width": widths,
            "name": "paths",
            "marker": {"color": COLORS[0]},
            "hovertemplate": f"%{{x:{xformat}}}: %{{y}} paths<extra></extra>",
        }
    ]
    shapes = []
    if marker is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": marker,
                "x1": marker,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#b42318", "dash": "dash", "width": 1},
            }
        )
    layout = _layout(
        title, xaxis={"tickformat": xformat}, shapes=shapes, bargap=0, hovermode="closest"
    )
    return {"data": data, "layout": layout, "caption": ""}


def series_figure(
    series: dict[str, dict[str, float]],
    title: str,
    *,
    yformat: str = "",
    hlines: dict[str, float] | None = None,
) -> dict | None:
    """Lines over ISO dates (``series``: name -> {date: value})."""
    if not series or not any(series.values()):
        return None
    frame = pd.DataFrame({k: pd.Series(v, dtype=float) for k, v in series.items()})
    frame.index = pd.to_datetime(frame.index)
    return lines_figure(frame.sort_index(), title, yformat=yformat, hlines=hlines)
