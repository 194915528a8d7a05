"""The static report: one HTML file that opens offline, five tabs rendered from the live
pages' contexts (the same figures, the same numbers), drawn in Chromium with the network
cut."""

from __future__ import annotations

import json
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from portfolio.models import PortfolioSnapshot
from reporting.charts import figure_json
from reporting.static_report import TABS, page_contexts, report_context
from reporting.tests.test_charts import assert_no_label_can_be_clipped
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


def expected_figures(portfolio) -> dict[str, dict]:
    """Every figure of the live pages' contexts, by the id the report gives it, as the
    browser reads it (JSON round trip: numpy arrays become lists, NaN null)."""
    pages = page_contexts(portfolio)
    figures = {}
    for tab in ("overview", "risk", "performance", "config"):
        for key, fig in pages[tab].get("figures", {}).items():
            figures[f"fig-{tab}-{key}"] = json.loads(figure_json(fig))
    for i, ctx in enumerate(pages["strategies"]):
        for key, fig in ctx["figures"].items():
            figures[f"fig-strategy-{i}-{key}"] = json.loads(figure_json(fig))
    return figures


@pytest.mark.django_db
def test_the_report_has_five_tabs_and_embeds_every_figure_of_the_live_pages(tmp_path):
    html, page = write_report(tmp_path)
    assert (
        page.tabs
        == list(TABS)
        == ["Overview", "Risk", "Performance", "Strategies"] + ["Configuration"]
    )
    portfolio = PortfolioSnapshot.objects.first().portfolio
    expected = expected_figures(portfolio)
    assert "fig-overview-equity" in expected and "fig-risk-var" in expected
    assert "fig-performance-monthly" in expected and "fig-strategy-1-equity" in expected
    # the same figures, to the last number, and no other
    assert page.figures == expected
    equity = page.figures["fig-overview-equity"]["data"][0]
    stored = PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date")
    assert equity["x"][-1] == END.isoformat()
    # short: not downsampled; rounded to 8 significant digits (charts.common._floats)
    assert equity["y"] == pytest.approx([float(s.equity) for s in stored], rel=1e-7, abs=0)


@pytest.mark.django_db
def test_no_figure_of_any_page_can_clip_its_labels():
    # every figure the live pages build (and so the report embeds), new panels included
    figures = expected_figures(make_portfolio())
    assert len(figures) >= 20
    for name, fig in figures.items():
        try:
            assert_no_label_can_be_clipped(fig)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


def _cards(panel) -> dict[str, str]:
    return {label: value for b in panel.blocks if b.kind == "cards" for label, value in b.items}


def _table(panel, title: str):
    return next(b for b in panel.blocks if b.kind == "table" and b.title == title)


@pytest.mark.django_db
def test_the_report_shows_the_numbers_of_the_page_contexts():
    portfolio = make_portfolio()
    context = report_context(portfolio)
    pages, panels = context["pages"], {p.tab: p for p in context["panels"]}
    last = PortfolioSnapshot.objects.filter(portfolio=portfolio).latest("date")
    metrics = pages["overview"]["metrics"]
    assert metrics["equity"] == last.equity
    overview = _cards(panels["Overview"])
    assert overview["Total value"] == f"{last.equity:,.2f}"
    assert overview["Leverage"] == f"{last.leverage:,.3f}"
    assert overview["Drawdown"] == f"{last.drawdown * 100:.2f}%"
    rows = {r[0]: r for r in _table(panels["Overview"], "Strategies").rows}
    for r in pages["overview"]["strategy_rows"]:
        shown = rows[r["strategy"].name]
        assert shown[1] == f"{r['capital']:,.2f}" and shown[7] == f"{r['sharpe']:,.2f}"
    risk = _cards(panels["Risk"])
    assert risk["VaR 95% / 99% (1 day)"] == f"{last.var_95 * 100:.2f}% / {last.var_99 * 100:.2f}%"
    books = panels["Strategies"].blocks
    index = [b for b in books if b.kind == "links"][0].items
    anchors = [(b.title, b.anchor) for b in books if b.kind == "heading" and b.anchor]
    assert index == anchors == [("momentum_20", "strategy-0"), ("momentum_40", "strategy-1")]
    depth = [r[4] for r in _table(panels["Performance"], "Drawdown periods (10 deepest)").rows]
    assert depth == [f"{d['depth'] * 100:.2f}%" for d in pages["performance"]["drawdowns"]]
    assert len(depth) >= 1


@pytest.mark.django_db
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_every_tab_draws_its_charts_in_a_browser_with_the_network_cut(tmp_path):
    from playwright.sync_api import sync_playwright

    _, parsed = write_report(tmp_path)
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
    prefixes = {"Overview": "fig-overview-", "Risk": "fig-risk-"}
    prefixes |= {"Performance": "fig-performance-", "Strategies": "fig-strategy-"}
    expected = {tab: sum(k.startswith(p) for k in parsed.figures) for tab, p in prefixes.items()}
    assert drawn == expected | {"Configuration": 0}
    # overview: equity, sector and asset-class pies; 2 books x equity, signal
    assert expected["Overview"] == 3 and expected["Strategies"] == 4


@pytest.mark.django_db
def test_the_report_charts_var_once_it_is_computed(tmp_path):
    portfolio = make_portfolio()
    PortfolioSnapshot.objects.filter(portfolio=portfolio).update(
        var_95=None, var_99=None, cvar_95=None, cvar_99=None
    )
    out = tmp_path / "report.html"
    call_command("export_dashboard", str(out))  # the live portfolio by default
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert "fig-risk-var" not in page.figures
    PortfolioSnapshot.objects.filter(portfolio=portfolio, date__gte=date(1990, 6, 1)).update(
        var_95=0.015, cvar_95=0.022
    )
    call_command("export_dashboard", str(out))
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    var = {t["name"]: t["y"] for t in page.figures["fig-risk-var"]["data"]}
    assert set(var["VaR 95%"]) == {0.015} and set(var["CVaR 95%"]) == {0.022}


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
    panel = {p.tab: p for p in report_context(portfolio)["panels"]}["Strategies"]
    shown = dict((row[0], row[1]) for row in _table(panel, "momentum_40: statistics").rows)
    assert [shown[k] for k in ("Total return", "Annual return", "Annual volatility")] == [
        f"{s.total_return * 100:.2f}%",
        f"{s.annual_return * 100:.2f}%",
        f"{s.annual_volatility * 100:.2f}%",
    ]
    assert shown["Sharpe ratio"] == f"{s.sharpe_ratio:.3f}"
