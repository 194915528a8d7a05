"""What every figure module shares: the palette and size constants, date and float
formatting (``_dates``, ``_floats``), the base ``_layout``, ``downsample``, the one JSON
serializer ``figure_json``, the generic ``lines_figure`` (with ``_hlines``) and
``bars_figure``, and ``rounded_for_display``.
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
