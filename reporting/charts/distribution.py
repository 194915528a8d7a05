"""Distribution figures: histograms of counts in equal bins, computed here so a page ships
counts, not every value.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reporting.charts.common import COLORS, _layout


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
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
    data = [_count_bars(counts, edges, width, xformat)]
    caption = f"{len(v):,} values in {len(counts)} bins."
    if outside:
        caption += f" {outside:,} values beyond the {clip:.0%}-{1 - clip:.0%} quantiles not drawn."
    sample = v_all if clip else v
    if normal and len(sample) > 1:
        mean, sd = float(np.mean(sample)), float(np.std(sample, ddof=1))
        if sd > 0:
            data.append(_normal_curve(mean, sd, n=len(sample), edges=edges, width=width))
            caption += f" Mean {mean:{xformat}}, std {sd:{xformat}}."
    layout = _layout(title, hovermode="closest", bargap=0.02, xaxis={"tickformat": xformat})
    return {"data": data, "layout": layout, "caption": caption}


def _count_bars(counts: np.ndarray, edges: np.ndarray, width: float, xformat: str) -> dict:
    """The histogram's bar trace: ``counts[i]`` drawn ``width`` wide at the centre of
    ``edges[i]``-``edges[i + 1]``, the bin's edges on hover (in ``xformat``)."""
    centers = (edges[:-1] + edges[1:]) / 2
    return {
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


def _normal_curve(mean: float, sd: float, *, n: int, edges: np.ndarray, width: float) -> dict:
    """The normal density with ``mean`` and ``sd`` at 200 points across the bins' span,
    scaled to counts (n x bin width x pdf(x)) so it lies over the bars of ``n`` values."""
    x = np.linspace(edges[0], edges[-1], 200)
    pdf = np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    return {
        "type": "scatter",
        "mode": "lines",
        "name": "normal (same mean, std)",
        "x": x,
        "y": pdf * n * width,
        "line": {"color": "#b42318", "width": 1.5},
        "hoverinfo": "skip",
    }
