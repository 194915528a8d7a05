"""Template helpers of the dashboard: a Plotly figure embedded as JSON, and number
formats."""

from __future__ import annotations

import json
import math

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from reporting.charts import figure_json  # the one serializer, shared with the static report

register = template.Library()


@register.simple_tag
def plotly_figure(figure: dict | None, name: str, css_class: str = "chart"):
    """A chart container, its figure as JSON for dashboard.js, and its caption."""
    if not figure:
        return mark_safe('<p class="muted">No data for this chart yet.</p>')
    caption = figure.get("caption") or ""
    return format_html(
        '<div class="{}" id="chart-{}" data-figure="fig-{}"></div>'
        '<script type="application/json" id="fig-{}">{}</script>{}',
        css_class,
        name,
        name,
        name,
        mark_safe(figure_json(figure)),
        format_html('<p class="caption">{}</p>', caption) if caption else "",
    )


def _unshown(value) -> str | None:
    """A dash for None/NaN (no figure), "∞" / "−∞" for an infinite one (a Sortino ratio
    without a down day, a profit factor without a losing trade: a figure, not a gap);
    None for a finite number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return None


@register.filter
def pct(value, digits: int = 2) -> str:
    """0.1234 -> "12.34%"; a dash for None/NaN, ∞ for an infinite value."""
    return _unshown(value) or f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def num(value, digits: int = 2) -> str:
    """1234.5 -> "1,234.50"; a dash for None/NaN, ∞ for an infinite value."""
    return _unshown(value) or f"{float(value):,.{int(digits)}f}"


@register.filter
def updown(value) -> str:
    """CSS class for a signed number: "up", "down" or ""."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "up" if v > 0 else "down" if v < 0 else ""


@register.filter
def stat(value, fmt: str) -> str:
    """A performance statistic in its format: "%" percent, "f" 3 decimals, ",d" count."""
    unshown = _unshown(value)
    if unshown:
        return unshown
    if fmt == "%":
        return pct(value)
    if fmt == ",d":
        return f"{int(value):,d}"
    return f"{float(value):.3f}"


@register.simple_tag
def export_links(portfolio, *tables: str):
    """'Download: equity CSV · Excel, ...' links to reporting/export_views for this
    portfolio, and one Excel workbook of every table."""
    from django.urls import reverse

    query = f"?portfolio={portfolio.pk}"
    parts = []
    for table in tables:
        csv_url = reverse("reporting:export", args=[table, "csv"]) + query
        xlsx_url = reverse("reporting:export", args=[table, "xlsx"]) + query
        link = '{} <a href="{}">CSV</a> · <a href="{}">Excel</a>'
        parts.append(format_html(link, table, csv_url, xlsx_url))
    everything = reverse("reporting:export-all") + query
    return format_html(
        '<p class="muted exports">Download: {}; <a href="{}">all tables (Excel)</a></p>',
        mark_safe("; ".join(parts)),  # each part escaped by format_html above
        everything,
    )


@register.filter
def json_attr(value) -> str:
    """A configuration value as compact JSON (escaped by the template): {"lookback": 60}."""
    return json.dumps(value, separators=(", ", ": "), sort_keys=True)


@register.filter
def split(value: str) -> list[str]:
    """ "a b c" -> ["a", "b", "c"] (choice lists written in a template)."""
    return value.split()


@register.filter
def get(mapping, key):
    """mapping[key] in a template (None when absent)."""
    return mapping.get(key) if hasattr(mapping, "get") else None
