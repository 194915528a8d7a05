"""The static report: one HTML file that opens offline, five tabs, figures embedded as JSON
that round-trips, at most 2,000 points a line; and the figure builders on literal data."""

from __future__ import annotations

import json
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from portfolio.models import PortfolioSnapshot
from reporting import report
from reporting.static_report import TABS
from reporting.tests.test_exports import END, make_portfolio


class Page(HTMLParser):
    """Collects what a browser would fetch or run: tags, their attributes, the tab labels,
    and the JSON figure payloads by element id."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.tabs: list[str] = []
        self.figures: dict[str, dict] = {}
        self._in: tuple[str, dict] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._in = (tag, attrs)

    def handle_data(self, data):
        if self._in is None:
            return
        tag, attrs = self._in
        if tag == "button" and attrs.get("role") == "tab":
            self.tabs.append(data.strip())
        elif tag == "script" and attrs.get("type") == "application/json":
            self.figures[attrs["id"]] = json.loads(data)

    def handle_endtag(self, tag):
        self._in = None


CHROMIUM = "/usr/bin/chromium"


def days(n: int) -> pd.DatetimeIndex:
    return pd.bdate_range("1990-01-02", periods=n)


# --- figures -------------------------------------------------------------------------------


def test_every_line_is_cut_to_2000_points_keeping_the_ends_and_the_extremes():
    rng = np.random.default_rng(3)
    idx = days(8000)
    equity = pd.Series(100 * np.cumprod(1 + rng.normal(0, 0.01, 8000)), index=idx)
    equity.iloc[4321] = equity.max() * 2  # a one-day spike must survive
    books = pd.DataFrame({"a": equity * 0.6, "b": equity * 0.4})
    bench = pd.Series(np.linspace(300, 600, 8000), index=idx)
    fig = report.equity_figure(equity, books, bench)
    names = [t["name"] for t in fig["data"]]
    assert names == ["Portfolio", "a", "b", report.BENCHMARK_NAME]
    for trace in fig["data"]:
        assert len(trace["x"]) == len(trace["y"]) <= report.MAX_POINTS
        assert trace["x"][0] == "1990-01-02" and trace["x"][-1] == idx[-1].date().isoformat()
    top = fig["data"][0]
    assert max(top["y"]) == equity.max() and idx[4321].date().isoformat() in top["x"]
    # the benchmark is rebased to the portfolio's first equity: 300 -> equity[0]
    assert fig["data"][3]["y"][0] == pytest.approx(equity.iloc[0], rel=1e-12)
    assert fig["data"][3]["y"][-1] == pytest.approx(600 / 300 * equity.iloc[0], rel=1e-12)


def test_the_stacked_weights_keep_the_same_dates_on_every_layer():
    idx = days(5000)
    w = pd.DataFrame({"a": np.linspace(0.2, 0.8, 5000)}, index=idx)
    w["b"] = 1 - w["a"]
    fig = report.weights_figure(w)
    a, b = fig["data"]
    assert a["x"] == b["x"] and len(a["x"]) <= report.MAX_POINTS
    assert np.allclose(np.add(a["y"], b["y"]), 1.0) and a["stackgroup"] == "weights"


def test_no_var_figure_until_the_risk_manager_has_computed_one():
    risk = pd.DataFrame({"var_95": [np.nan, np.nan], "cvar_99": [np.nan, np.nan]})
    assert report.var_figure(risk) is None
    risk.loc[1, "var_95"] = 0.02
    assert [t["name"] for t in report.var_figure(risk)["data"]] == ["VaR 95%"]


def test_figure_json_cannot_close_its_script_element_and_round_trips():
    nasty = '</script><script>alert("x")</script> & <!--'
    fig = {"data": [{"name": nasty, "y": np.array([1.0, np.nan])}], "layout": {}}
    text = report.figure_json(fig)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"data": [{"name": nasty, "y": [1.0, None]}], "layout": {}}


def test_the_monthly_heatmap_is_centred_on_zero():
    table = pd.DataFrame({"Jan": [0.05, -0.10], "Feb": [0.02, np.nan], "Year": [0.07, -0.1]})
    table.index = [2020, 2021]
    heat = report.monthly_returns_figure(table)["data"][0]
    assert heat["x"] == ["Jan", "Feb"] and heat["y"] == ["2020", "2021"]
    assert (heat["zmin"], heat["zmid"], heat["zmax"]) == (-0.10, 0.0, 0.10)
    assert heat["text"] == [["5.0%", "2.0%"], ["-10.0%", ""]]


# --- the file ------------------------------------------------------------------------------


def write_report(tmp_path) -> tuple[str, Page]:
    portfolio = make_portfolio()
    out = tmp_path / "report.html"
    call_command("export_dashboard", str(out), "--portfolio", portfolio.name)
    html = out.read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    page.close()
    return html, page


@pytest.mark.django_db
def test_opening_the_report_needs_no_network(tmp_path):
    html, page = write_report(tmp_path)
    assert "<script src=" not in html and "<link" not in html
    fetched = [
        (tag, attrs)
        for tag, attrs in page.tags
        if attrs.get("src") or (tag == "link") or (attrs.get("href") and tag != "a")
    ]
    assert fetched == []  # nothing to fetch: scripts, styles and data are all inline
    assert "@import" not in html.split("</style>")[0] and "url(" not in html.split("</style>")[0]
    assert "Plotly.newPlot" in html and len(html) > 3_000_000  # plotly.js is inlined


@pytest.mark.django_db
def test_the_report_has_five_tabs_and_figures_that_round_trip(tmp_path):
    html, page = write_report(tmp_path)
    assert (
        page.tabs
        == list(TABS)
        == [
            "Overview",
            "Risk",
            "Performance",
            "Strategies",
            "Configuration",
        ]
    )
    names = {k: [t["name"] for t in fig["data"]] for k, fig in page.figures.items()}
    assert names["fig-equity"] == ["Portfolio", "momentum_20", "momentum_40", "S&P 500 (rebased)"]
    assert names["fig-growth"] == ["momentum_20", "momentum_40"]
    assert names["fig-drawdown"] == ["Drawdown"]
    assert names["fig-monthly"] == ["Monthly return"]
    assert names["fig-rolling"] == ["Sharpe (60d)", "Volatility (60d)"]
    assert names["fig-var"] == ["VaR 95%", "VaR 99%", "CVaR 95%", "CVaR 99%"]  # no limits needed
    equity = page.figures["fig-equity"]["data"][0]
    stored = PortfolioSnapshot.objects.filter(portfolio__name="export test").order_by("date")
    assert equity["x"][-1] == END.isoformat()
    assert equity["y"] == [float(s.equity) for s in stored]  # short: not downsampled
    assert "at most 2,000 points" in html


@pytest.mark.django_db
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_every_tab_draws_its_charts_in_a_browser_with_the_network_cut(tmp_path):
    from playwright.sync_api import sync_playwright

    write_report(tmp_path)
    requests, errors, drawn = [], [], {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.route(re.compile(r"^(?!file:).*"), lambda route: route.abort())
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "report.html").as_uri())
        for tab in TABS:
            page.click(f"#tab-{tab.lower()}")
            panel = f"#panel-{tab.lower()}"
            page.wait_for_function(
                f"[...document.querySelectorAll('{panel} [data-figure]')]"
                ".every(d => d.querySelector('.main-svg'))"
            )
            drawn[tab] = page.locator(f"{panel} .js-plotly-plot").count()
            assert page.locator(panel).is_visible()
        browser.close()
    assert errors == [] and [u for u in requests if not u.startswith("file:")] == []
    assert drawn == {
        "Overview": 1,
        "Risk": 2,  # drawdown, and VaR/CVaR (measured with or without limits)
        "Performance": 2,
        "Strategies": 2,
        "Configuration": 0,
    }


@pytest.mark.django_db
def test_the_report_charts_var_once_it_is_computed(tmp_path):
    portfolio = make_portfolio()
    PortfolioSnapshot.objects.filter(portfolio=portfolio).update(
        var_95=None, var_99=None, cvar_95=None, cvar_99=None
    )
    PortfolioSnapshot.objects.filter(portfolio=portfolio, date__gte=date(1990, 6, 1)).update(
        var_95=0.015, cvar_95=0.022
    )
    out = tmp_path / "report.html"
    call_command("export_dashboard", str(out))  # the live portfolio by default
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    var = page.figures["fig-var"]["data"]
    assert [t["name"] for t in var] == ["VaR 95%", "CVaR 95%"]
    assert set(var[0]["y"]) == {0.015} and "not computed yet." not in out.read_text()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "out, args, message",
    [
        ("report.txt", [], "OUT.html {tmp}/report.txt: the file name must end in .html"),
        (
            "missing/r.html",
            [],
            "OUT.html {tmp}/missing/r.html: directory {tmp}/missing does not exist",
        ),
        ("r.html", ["--portfolio", "Nope"], "--portfolio 'Nope': no such portfolio"),
    ],
)
def test_the_report_command_refuses_bad_input_and_writes_nothing(tmp_path, out, args, message):
    make_portfolio()
    with pytest.raises(CommandError) as raised:
        call_command("export_dashboard", str(tmp_path / out), *args)
    assert message.format(tmp=tmp_path) in str(raised.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db
def test_a_portfolio_without_history_gets_a_report_that_says_so(tmp_path):
    from operations.config import portfolio_configure
    from portfolio.engine.config_schema import parse_allocation_config
    from reporting.tests.test_exports import small_config

    spec = parse_allocation_config(small_config("fresh"), source="test.yaml")
    portfolio_configure(spec=spec, source="test.yaml")
    out = tmp_path / "report.html"
    call_command("export_dashboard", str(out))
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert page.tabs == list(TABS) and page.figures == {}
    assert "no history yet" in out.read_text()


@pytest.mark.django_db
def test_the_report_drops_each_books_own_funding_day_from_its_statistics():
    from portfolio.models import StrategySnapshot
    from reporting.engine.performance import performance_stats
    from reporting.static_report import report_context

    portfolio = make_portfolio()
    # momentum_40 joins three bars after the portfolio: as the update path stores a book
    # funded on a later bar, its first snapshot has daily_return 0.0 (no equity before).
    book = StrategySnapshot.objects.filter(strategy__name="momentum_40").order_by("date")
    for snap in book[:3]:
        snap.delete()
    funding = book.first()
    funding.daily_return = 0.0
    funding.save()
    rows = list(book)[1:]  # its returns: every snapshot after its funding day
    r = pd.Series([x.daily_return for x in rows], index=pd.to_datetime([x.date for x in rows]))
    s = performance_stats(r)
    table = report_context(portfolio)["stats_table"]
    shown = {row[0]: row for row in table.rows}["momentum_40"]
    assert shown[1:5] == [
        f"{s.total_return * 100:,.2f}%",
        f"{s.annual_return * 100:,.2f}%",
        f"{s.annual_volatility * 100:,.2f}%",
        f"{s.sharpe_ratio:,.2f}",
    ]
