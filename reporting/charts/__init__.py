"""Plotly figure builders for the dashboard: pure functions, data in, figure dict out.

The one figure package of the dashboard, the static report and the notebook. No Django,
no database, no maths beyond laying numbers out (the numbers come from
``reporting.engine`` or the stored snapshots). Each builder returns a plain dict with the
keys ``data`` and ``layout`` that Plotly.newPlot takes, plus ``caption`` (text shown under
the chart, e.g. how it was downsampled) and, for the correlation heatmap, ``scatter`` (the
returns the click-through scatter draws). Long daily series go through
``reporting.engine.downsample.decimate`` to at most ``MAX_POINTS`` rows per figure, so a
32-year history ships kilobytes, not megabytes.

Modules by what they draw: ``common`` (palette, layout, number formatting, downsampling,
``figure_json``, and the generic line and bar figures the others build on), ``equity``
(equity curve, drawdown, growth, monthly returns), ``risk`` (allocation pies and areas,
gauges, correlation, risk contributions, VaR), ``strategy`` (trade markers and the signal
overlay) and ``distribution`` (histograms). Callers import this package
(``from reporting import charts``; ``from reporting.charts import figure_json``): every
public name is re-exported here.
"""

from reporting.charts.common import (
    BENCHMARK_COLOR,
    COLORS,
    EVENT_COLOR,
    EYE_DIGITS,
    GAIN_COLOR,
    GAIN_LOSS_SCALE,
    GAUGE_SIDE_MARGIN,
    LOSS_COLOR,
    MAX_MARKERS,
    MAX_POINTS,
    MONTHS,
    NEUTRAL_COLOR,
    PORTFOLIO_COLOR,
    RUG_HEIGHT,
    SECONDARY_POINTS,
    SIGNIFICANT_DIGITS,
    bars_figure,
    downsample,
    figure_json,
    lines_figure,
    rounded_for_display,
)
from reporting.charts.distribution import (
    histogram_figure,
)
from reporting.charts.equity import (
    DRAWDOWN_FILL,
    drawdown_figure,
    equity_curve_figure,
    growth_figure,
    monthly_heatmap_figure,
)
from reporting.charts.risk import (
    correlation_band_figure,
    correlation_figure,
    gauge_figure,
    pie_figure,
    risk_contribution_figure,
    risk_decomposition_figure,
    stacked_area_figure,
    var_interval_figure,
    volatility_gauge_figure,
)
from reporting.charts.strategy import (
    PANEL_GAP,
    PANEL_SHARE,
    markers_figure,
    signal_overlay_figure,
)

__all__ = [
    "MAX_POINTS",
    "SECONDARY_POINTS",
    "MAX_MARKERS",
    "SIGNIFICANT_DIGITS",
    "COLORS",
    "PORTFOLIO_COLOR",
    "BENCHMARK_COLOR",
    "GAIN_COLOR",
    "LOSS_COLOR",
    "NEUTRAL_COLOR",
    "EVENT_COLOR",
    "GAIN_LOSS_SCALE",
    "RUG_HEIGHT",
    "GAUGE_SIDE_MARGIN",
    "MONTHS",
    "figure_json",
    "downsample",
    "lines_figure",
    "bars_figure",
    "EYE_DIGITS",
    "rounded_for_display",
    "equity_curve_figure",
    "drawdown_figure",
    "monthly_heatmap_figure",
    "DRAWDOWN_FILL",
    "growth_figure",
    "pie_figure",
    "gauge_figure",
    "correlation_figure",
    "risk_contribution_figure",
    "stacked_area_figure",
    "correlation_band_figure",
    "risk_decomposition_figure",
    "var_interval_figure",
    "volatility_gauge_figure",
    "markers_figure",
    "signal_overlay_figure",
    "PANEL_GAP",
    "PANEL_SHARE",
    "histogram_figure",
]
