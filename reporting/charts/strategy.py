"""Strategy and signal figures: a line with trade markers, and the signal overlay (price,
signal and levels in stacked panels).
"""

from __future__ import annotations

import pandas as pd

from reporting.charts.common import (
    COLORS,
    MAX_MARKERS,
    _dates,
    _floats,
    _layout,
    downsample,
    lines_figure,
)


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
    layout["xaxis"] = {"automargin": True, "anchor": "y" if not panels else f"y{len(panels) + 1}"}
    data = []
    for i, column in enumerate(top):
        line = _overlay_line(x, kept[column], column, "y", COLORS[i % len(COLORS)])
        line["name"] = (names or {}).get(column, column)
        data.append(line)
    for j, panel in enumerate(panels):
        color = COLORS[(len(top) + j) % len(COLORS)]
        data.append(_panel_line(layout, j, panel, x, kept, bottom_of_top, color))
    for m in markers:
        trace, said = _fill_markers(m)
        data.append(trace)
        caption += said
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


def _panel_line(
    layout: dict, j: int, panel: dict, x: list[str], kept: pd.DataFrame, top: float, color: str
) -> dict:
    """Lower panel ``j`` of ``signal_overlay_figure`` (0 just under the price axis, whose
    bottom is at ``top``): its axis ``y{j + 2}`` added to ``layout``, ``PANEL_SHARE`` of
    the plot high with ``PANEL_GAP`` above it, its ``levels`` as dashed lines; returns the
    line of ``kept[panel["column"]]`` on it, named by the panel's title."""
    axis = f"y{j + 2}"
    top_edge = top - PANEL_GAP - j * (PANEL_SHARE + PANEL_GAP)
    layout[f"yaxis{j + 2}"] = {
        "domain": [round(max(top_edge - PANEL_SHARE, 0.0), 6), round(top_edge, 6)],
        "title": {"text": panel["title"]},
        "automargin": True,
        "tickformat": panel.get("format", ""),
        **({"autorange": "reversed"} if panel.get("reversed") else {}),
    }
    line = _overlay_line(x, kept[panel["column"]], panel["column"], axis, color)
    line["name"] = panel["title"]
    for label, y in panel.get("levels", {}).items():
        _level_line(layout, axis, label, y)
    return line


def _fill_markers(m: dict) -> tuple[dict, str]:
    """A marker trace of ``m`` (as ``markers_figure`` takes it) on the price axis, its most
    recent ``MAX_MARKERS`` fill dates only, and the caption's sentence saying how many."""
    dates = pd.DatetimeIndex(m["dates"])
    keep = slice(max(len(dates) - MAX_MARKERS, 0), None)
    trace = {
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
    shown = min(len(dates), MAX_MARKERS)
    return trace, f" {m['name']}: {shown:,} of {len(dates):,} fill dates (most recent kept)."
