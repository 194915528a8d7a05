"""Figure builders (reporting/charts.py) and the JSON embedding, on hand-worked inputs."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pytest

from reporting import charts
from reporting.templatetags.dashboard import figure_json


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


def test_equity_curve_marks_rebalances_on_the_portfolio_line():
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
    assert marker["x"] == ["2024-01-02"] and marker["y"].tolist() == [110.0]
    assert marker["text"] == ["rebalance (periodic): 7 moved"]
    assert fig["data"][1]["line"]["width"] == 1.0


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
    assert marker["x"] == ["2024-01-02", "2024-01-02"] and marker["y"].tolist() == [110.0, 110.0]


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
