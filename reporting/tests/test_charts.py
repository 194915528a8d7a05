"""Figure builders (reporting/charts.py) and the JSON embedding, on hand-worked inputs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from reporting import charts
from reporting.charts import common as charts_common
from reporting.charts import figure_json

CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "quantsite.css"


def _days(n):
    return pd.date_range("2024-01-01", periods=n, freq="B")


def test_lines_figure_keeps_short_series_whole_and_nan_as_null():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0]}, index=_days(3))
    fig = charts.lines_figure(frame, "t")
    trace = fig["data"][0]
    assert trace["x"] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert orjson.loads(figure_json(fig))["data"][0]["y"] == [1.0, None, 3.0]
    assert fig["caption"] == "3 daily points, all drawn."


def test_long_series_are_decimated_to_the_budget_and_keep_their_extremes():
    values = np.sin(np.arange(9000) / 50.0)
    values[4321] = 5.0  # a one-day spike must survive
    frame = pd.DataFrame(
        {"a": values, "b": -values}, index=pd.date_range("1990-01-01", periods=9000)
    )
    fig = charts.lines_figure(frame, "t", max_points=2000)
    ys = fig["data"][0]["y"]
    assert len(ys) <= 2000 and len(fig["data"][1]["y"]) == len(ys)
    assert max(ys) == 5.0 and min(fig["data"][1]["y"]) == -5.0
    assert fig["data"][0]["x"][0] == "1990-01-01"
    assert "9,000 daily points downsampled to" in fig["caption"]


def test_values_are_rounded_to_eight_significant_digits_of_the_largest():
    fig = charts.lines_figure(pd.DataFrame({"a": [0.0123456789123, 0.5]}, index=_days(2)), "t")
    # largest 0.5 -> 8 significant digits = 8 decimals
    assert fig["data"][0]["y"].tolist() == [0.01234568, 0.5]


def test_histogram_counts_and_normal_overlay_scaled_to_counts():
    # values 0,1,1,2 in 2 bins over [0, 2]: [0, 1) holds 0 -> 1 value; [1, 2] holds 3
    fig = charts.histogram_figure(pd.Series([0.0, 1.0, 1.0, 2.0]), "h", bins=2, xformat=".1f")
    bars, normal = fig["data"]
    assert bars["y"].tolist() == [1, 3] and bars["x"].tolist() == [0.5, 1.5]
    # mean 1, sd (ddof=1) sqrt(2/3); at x = 1 the curve is n * width * pdf(1)
    sd = math.sqrt(2 / 3)
    peak = 4 * 1.0 / (sd * math.sqrt(2 * math.pi))
    assert max(normal["y"]) == pytest.approx(peak, rel=1e-3)


def test_histogram_clip_leaves_out_the_tails_and_says_so():
    values = pd.Series(np.r_[np.zeros(98), [-1000.0, 1000.0]])
    fig = charts.histogram_figure(values, "pnl", bins=5, clip=0.01, normal=False)
    assert sum(fig["data"][0]["y"]) == 98
    assert "2 values beyond" in fig["caption"]


def test_gauge_shows_the_limit_or_says_there_is_none():
    with_limit = charts.gauge_figure("Leverage", 0.9, 2.0, fmt=".2f")["data"][0]
    assert (
        with_limit["gauge"]["threshold"]["value"] == 2.0
        and "limit 2.00" in with_limit["title"]["text"]
    )
    without = charts.gauge_figure("Leverage", 0.9, None, fmt=".2f")["data"][0]
    assert "threshold" not in without["gauge"] and "no limit" in without["title"]["text"]


def test_equity_curve_marks_rebalances_with_ticks_in_their_own_strip():
    equity = pd.Series([100.0, 110.0, 105.0], index=_days(3))
    books = pd.DataFrame({"m": [50.0, 60.0, 55.0]}, index=_days(3))
    bench = pd.Series([100.0, 101.0, 99.0], index=_days(3))
    events = pd.DataFrame(
        {"date": pd.to_datetime(["2024-01-02"]), "trigger": ["periodic"], "capital_moved": [7.0]}
    )
    fig = charts.equity_curve_figure(equity, books, bench, events)
    names = [t["name"] for t in fig["data"]]
    assert names == ["Portfolio", "m", "S&P 500 (rebased)", "Rebalances"]
    marker = fig["data"][-1]
    assert marker["x"] == ["2024-01-02"]
    # equity on that bar (110) in the hover, the tick itself on a hidden strip under the plot
    assert marker["text"] == ["rebalance (periodic): 7 moved, equity 110"]
    assert marker["yaxis"] == "y2" and marker["marker"]["symbol"] == "line-ns-open"
    layout = fig["layout"]
    strip, plot = layout["yaxis2"]["domain"], layout["yaxis"]["domain"]
    assert strip[1] <= plot[0] and layout["yaxis2"]["visible"] is False
    assert layout["xaxis"]["anchor"] == "y2"  # the dates sit under the strip
    assert fig["data"][1]["line"]["width"] == 1.0


def test_the_rebalance_ticks_use_a_colour_no_series_uses():
    n = len(charts.COLORS) + 2  # more books than colours: the palette wraps around
    equity = pd.Series(np.linspace(100.0, 120.0, 5), index=_days(5))
    books = pd.DataFrame({f"s{i}": equity / n for i in range(n)})
    events = pd.DataFrame(
        {"date": _days(5)[[1, 3]], "trigger": ["periodic"] * 2, "capital_moved": [1.0, 2.0]}
    )
    fig = charts.equity_curve_figure(equity, books, equity * 0.9, events)
    *series, ticks = fig["data"]
    assert {t["line"]["color"] for t in series} == set(charts.COLORS) | {
        charts.PORTFOLIO_COLOR,
        charts.BENCHMARK_COLOR,
    }
    assert ticks["name"] == "Rebalances" and ticks.get("showlegend", True)
    colour = ticks["marker"]["color"]
    assert colour == charts.EVENT_COLOR
    assert colour.lower() not in {t["line"]["color"].lower() for t in series}


def test_two_rebalances_on_one_bar_get_a_marker_each():
    # the demo's overview answered 500 ("cannot reindex on an axis with duplicate labels")
    # once a liquidation's recovery rebalance and the monthly one fell on the same bar
    equity = pd.Series([100.0, 110.0, 105.0], index=_days(3))
    books = pd.DataFrame({"m": [50.0, 60.0, 55.0]}, index=_days(3))
    events = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02", "2024-01-02"]),
            "trigger": ["risk_breach", "periodic"],
            "capital_moved": [7.0, 3.0],
        }
    )
    marker = charts.equity_curve_figure(equity, books, None, events)["data"][-1]
    assert marker["x"] == ["2024-01-02", "2024-01-02"]
    assert [t.rsplit(" ", 1)[1] for t in marker["text"]] == ["110", "110"]


def test_monthly_heatmap_hover_lists_each_strategy():
    table = pd.DataFrame({m: [np.nan] * 1 for m in charts.MONTHS}, index=[2024])
    table["Jan"] = 0.02
    breakdown = {"m": table * 0.5, "r": table * 1.5}
    fig = charts.monthly_heatmap_figure(table, breakdown)
    assert fig["data"][0]["customdata"][0][0] == "m: +1.00%<br>r: +3.00%"
    assert fig["data"][0]["customdata"][0][1] == "no strategy data"


def test_risk_contributions_draw_a_pie_unless_one_is_negative():
    assert (
        charts.risk_contribution_figure(pd.Series({"a": 0.1, "b": 0.05}))["data"][0]["type"]
        == "pie"
    )
    fig = charts.risk_contribution_figure(pd.Series({"a": 0.1, "b": -0.02}))
    assert fig["data"][0]["type"] == "bar" and "8.00%" in fig["caption"]


def test_figure_json_cannot_close_its_script_element():
    fig = {"data": [{"name": "</script><script>alert(1)</script>&"}], "layout": {}}
    text = figure_json(fig)
    assert "</script>" not in text and "<" not in text and "&" not in text
    assert orjson.loads(text)["data"][0]["name"].startswith("</script>")


def test_the_monthly_heatmap_draws_gains_in_the_sites_gain_colour_on_a_symmetric_scale():
    table = pd.DataFrame({m: [np.nan] for m in charts.MONTHS}, index=[2024])
    table["Jan"], table["Feb"] = 0.05, -0.10
    heat = charts.monthly_heatmap_figure(table, {})["data"][0]
    css = dict(re.findall(r"--(up|down):(#[0-9a-fA-F]{6})", CSS.read_text()))
    scale = heat["colorscale"]
    # lowest value (a loss) in the site's loss colour, highest (a gain) in its gain colour
    assert scale[0] == [0.0, css["down"]] and scale[-1] == [1.0, css["up"]]
    assert scale[1] == [0.5, charts.NEUTRAL_COLOR]  # zero: neutral, mid-scale
    assert "reversescale" not in heat
    assert heat["zmin"] == -heat["zmax"] and heat["zmax"] > 0


def test_the_correlation_heatmap_is_as_tall_as_its_rows():
    def height(n):
        names = [f"strategy_{i}" for i in range(n)]
        corr = pd.DataFrame(np.eye(n), index=names, columns=names)
        returns = pd.DataFrame(np.zeros((3, n)), columns=names, index=_days(3))
        return charts.correlation_figure(corr, returns, None, 3)["layout"]["height"]

    assert height(5) == 44 * 5 + 170 and height(10) - height(5) == 5 * 44


def sample_figures() -> dict[str, dict]:
    """One of each figure the builders make, on small literal inputs."""
    idx = _days(6)
    frame = pd.DataFrame({"momentum_60": np.linspace(1, 2, 6), "mean_reversion_20": 1.0}, idx)
    events = pd.DataFrame({"date": idx[[2]], "trigger": ["periodic"], "capital_moved": [5.0]})
    corr = pd.DataFrame([[1.0, 0.3], [0.3, 1.0]], index=frame.columns, columns=frame.columns)
    months = pd.DataFrame({m: [0.01] for m in charts.MONTHS}, index=[2024])
    return {
        "lines": charts.lines_figure(frame, "lines", hlines={"limit": 1.5}),
        "equity": charts.equity_curve_figure(frame.sum(axis=1), frame, None, events),
        "drawdown": charts.drawdown_figure(-frame / 10),
        "correlation": charts.correlation_figure(corr, frame, 0.8, 6),
        "bars": charts.bars_figure(frame.iloc[:2].T, "bars"),
        "bars_h": charts.bars_figure(frame.iloc[:2].T, "bars", horizontal=True),
        "risk_bars": charts.risk_contribution_figure(pd.Series({"a": 0.1, "b": -0.02})),
        "pie": charts.pie_figure(pd.Series({"Consumer Discretionary": 2.0, "Energy": 1.0}), "p"),
        "histogram": charts.histogram_figure(pd.Series(np.arange(10.0)), "h"),
        "monthly": charts.monthly_heatmap_figure(months, {}),
        "stacked": charts.stacked_area_figure(frame, frame.sum(axis=1), "stack"),
        "markers": charts.markers_figure(frame["momentum_60"], "m", [], "markers"),
    }


def cartesian_axes(fig: dict) -> set[str]:
    """Layout keys of every axis the figure draws: those its traces use and those it sets."""
    axes = {k for k in fig["layout"] if re.fullmatch(r"[xy]axis\d*", k)}
    for trace in fig["data"]:
        if trace["type"] in ("pie", "indicator"):
            continue
        axes.add("xaxis" + trace.get("xaxis", "x")[1:])
        axes.add("yaxis" + trace.get("yaxis", "y")[1:])
    return axes


def assert_no_label_can_be_clipped(fig: dict) -> None:
    """Every visible axis grows the margins to fit its labels (automargin); gauges keep
    side margins wide enough for their end ticks; the title sits above the plot area,
    clear of the mode bar's band at the top of the chart."""
    layout = fig["layout"]
    for axis in cartesian_axes(fig):
        spec = layout.get(axis, {})
        assert spec.get("visible") is False or spec.get("automargin") is True, axis
    for trace in fig["data"]:
        if trace["type"] == "pie":  # labels outside the pie push the margins too
            assert trace["automargin"] is True
    if any(t["type"] == "indicator" for t in fig["data"]):
        margin = layout["margin"]
        assert min(margin["l"], margin["r"]) >= charts.GAUGE_SIDE_MARGIN
    elif "title" in layout:
        title = layout["title"]
        assert (title["yref"], title["y"], title["yanchor"]) == ("paper", 1, "bottom")
        assert title["automargin"] is True and layout["margin"]["t"] >= 60


@pytest.mark.parametrize("name", list(sample_figures()))
def test_every_figure_sets_automargin_on_its_axes(name):
    fig = sample_figures()[name]
    assert cartesian_axes(fig) or name == "pie"  # each of the others draws on axes
    assert_no_label_can_be_clipped(fig)


def test_gauges_leave_room_for_their_end_ticks():
    fig = charts.gauge_figure("Volatility", 0.148, 0.25, fmt=".1%")
    assert cartesian_axes(fig) == set()
    assert_no_label_can_be_clipped(fig)


def test_a_layout_merges_axis_settings_into_the_automargin_defaults():
    layout = charts_common._layout("t", yaxis={"tickformat": ".0%"}, xaxis={"type": "log"})
    assert layout["yaxis"] == {"automargin": True, "tickformat": ".0%"}
    assert layout["xaxis"] == {"automargin": True, "type": "log"}


def test_display_rounding_keeps_four_digits_of_the_range_and_of_every_point_on_a_log_axis():
    """Linear axis: 4 significant digits of the largest magnitude (1 in 10,000 of the
    range). Log axis: of the smallest, so points near 1 stay apart once the growth of 1
    reached 300 (with the largest's digits 0.952 and 1.041 would both read 1.0)."""

    figure = {
        "data": [
            {"y": np.array([1234.5678, 1.23456, np.nan])},
            {"y": np.array([0.952345, 1.041234, 312.4567]), "yaxis": "y2"},
        ],
        "layout": {"yaxis": {}, "yaxis2": {"type": "log"}},
    }
    charts.rounded_for_display(figure)
    linear, log = (t["y"] for t in figure["data"])
    np.testing.assert_array_equal(linear[:2], [1235.0, 1.0])
    assert np.isnan(linear[2])
    np.testing.assert_array_equal(log, [0.9523, 1.0412, 312.4567])
