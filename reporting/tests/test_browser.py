"""The five pages in real headless Chromium (Playwright, sync API) against live_server:
every chart drawn with data, a strategy line toggled from the legend, the strategy table
sorted, the phone layout without page-wide horizontal scrolling, and a screenshot of each
page under var/screenshots/ (git-ignored) as a test artifact.

live_server needs transactional database access, whose teardown flushes every table,
including the bundled prices the session loaded once (conftest.py). The module fixture
``prices_restored`` reloads them after this module, so the modules that run later still
find them.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
]
AS_OF = date(1991, 6, 28)
PAGES = {
    "overview": "/",
    "risk": "/risk/",
    "performance": "/performance/",
    "performance-trades": "/performance/?section=trades",
    "performance-attribution": "/performance/?section=attribution",
    "performance-rolling": "/performance/?section=rolling",
    "strategy": "/strategy/mean_reversion_20/",
    "config": "/config/",
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]

# For each [data-figure] div: did Plotly draw it (class js-plotly-plot), and does some
# trace carry data (x, values, z, or an indicator's value)?
CHARTS_JS = """() => Array.from(document.querySelectorAll('[data-figure]')).map(d => ({
  id: d.id,
  drawn: d.classList.contains('js-plotly-plot'),
  points: (d.data || []).reduce((n, t) => n + Math.max(
      (t.x || []).length, (t.values || []).length, (t.z || []).length,
      t.value !== undefined ? 1 : 0), 0),
}))"""


@pytest.fixture(scope="module")
def prices_restored(django_db_blocker):
    yield
    from portfolio.feeds import BundledProvider
    from portfolio.services.prices import prices_load

    with django_db_blocker.unblock():
        prices_load(provider=BundledProvider(), strict=True)


@pytest.fixture
def demo(prices_restored, transactional_db):
    from operations.config import portfolio_configure
    from operations.update import run_update
    from portfolio.feeds import BundledProvider
    from portfolio.services.config import allocation_spec_read
    from portfolio.services.prices import prices_load
    from risk.services import risk_spec_read

    prices_load(provider=BundledProvider(), strict=True, until=AS_OF)  # no-op if present
    config = Path(settings.BASE_DIR) / "config"
    portfolio_configure(
        spec=allocation_spec_read(config / "strategy_allocation.yaml"),
        risk=risk_spec_read(config / "risk_limits.yaml"),
        source="browser-test",
    )
    run_update(as_of=AS_OF, load_prices=False)


@contextmanager
def logged_in_page(live_server, django_user_model, client):
    """A 1280 x 900 Chromium page logged in as a new user on ``live_server``; its
    ``errors`` collects the page's uncaught JavaScript errors."""
    from playwright.sync_api import sync_playwright

    user = django_user_model.objects.create_user("viewer", password="not-a-real-password-1")
    client.force_login(user)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture
def browser_page(demo, live_server, django_user_model, client):
    with logged_in_page(live_server, django_user_model, client) as page:
        yield page, live_server.url


def _open(page, url):
    page.goto(url, wait_until="load")
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot').length"
        " === document.querySelectorAll('[data-figure]').length"
    )


def test_every_page_draws_every_chart_with_data(browser_page):
    page, base = browser_page
    drawn = {}
    for name, path in PAGES.items():
        _open(page, base + path)
        charts = page.evaluate(CHARTS_JS)
        drawn[name] = len(charts)
        for chart in charts:
            assert chart["drawn"] and chart["points"] > 0, (name, chart)
        assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == len(charts)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert page.errors == []
    performance = sum(n for name, n in drawn.items() if name.startswith("performance"))
    assert drawn["overview"] == 3 and drawn["risk"] >= 6 and performance >= 12
    assert drawn["strategy"] == 2 and drawn["config"] == 0


def test_a_legend_click_hides_a_strategy_line(browser_page):
    page, base = browser_page
    _open(page, base + "/")
    index = page.evaluate(
        "document.getElementById('chart-equity').data.findIndex(t => t.name === 'momentum_60')"
    )
    assert index > 0
    item = page.locator("#chart-equity g.traces", has_text="momentum_60")
    item.locator(".legendtoggle").click()
    page.wait_for_function(
        f"() => document.getElementById('chart-equity').data[{index}].visible === 'legendonly'"
    )
    portfolio = page.evaluate("document.getElementById('chart-equity').data[0].visible")
    assert portfolio in (None, True)


def test_a_header_click_sorts_the_strategy_table(browser_page):
    page, base = browser_page
    _open(page, base + "/")
    rows = "Array.from(document.querySelectorAll('#strategy-table tbody tr'))"
    names = rows + ".map(tr => tr.cells[0].textContent.trim())"
    values = rows + ".map(tr => parseFloat(tr.cells[1].dataset.value))"
    before = page.evaluate(names)
    page.locator("#strategy-table th", has_text="Capital").click()
    after = page.evaluate(names)
    equity = page.evaluate(values)
    assert equity == sorted(equity, reverse=True)
    assert after != before and sorted(after) == sorted(before)
    page.locator("#strategy-table th", has_text="Capital").click()
    assert page.evaluate(values) == sorted(equity)


def test_a_correlation_cell_click_draws_the_scatter(browser_page):
    page, base = browser_page
    _open(page, base + "/risk/")
    cell = page.locator("#chart-correlation .nsewdrag").first
    box = cell.bounding_box()
    # bottom-left cell: first strategy (x) against the last (y); Plotly's click reports
    # the point its hover found, so hover first
    at = {"x": box["width"] * 0.1, "y": box["height"] * 0.9}
    cell.hover(position=at, force=True)
    page.wait_for_timeout(300)
    cell.click(position=at, force=True)
    page.wait_for_function(
        "() => document.getElementById('correlation-scatter').classList.contains('js-plotly-plot')"
    )
    points = page.evaluate("document.getElementById('correlation-scatter').data[0].x.length")
    assert points == 60  # the risk manager's window (risk_limits.yaml measurement.window_bars)


def test_pages_fit_a_phone_screen(browser_page):
    page, base = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in PAGES.items():
        _open(page, base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 392, (name, width)  # wide tables scroll inside .table-wrap
        page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
