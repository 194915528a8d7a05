"""Every page under the Content-Security-Policy, in real headless Chromium (issue 15,
point 6): the dashboard pages, every strategy page, the configuration page, the login
form, the admin (index, a list, a change form, an add form), the browsable API and the
Swagger docs page. On each: the CSP header is there, no violation is reported (neither
a ``securitypolicyviolation`` event nor a console message), every chart is drawn (an svg
in each figure, laid out by our static copy of Plotly's stylesheet), and on the live
pages the websocket connects (the connection indicator says "live", as
test_live_browser.py checks it). A negative control shows the listener catches an inline
handler the policy refuses, and a last test pins static/css/plotly.css to the rules the
vendored plotly.min.js would inject.

A real daphne (websockets: pytest-django's live_server speaks WSGI only) on a fresh data
dir after ``migrate`` and ``demo_setup``: SQLite, or on the PostgreSQL leg a database of
its own (created and dropped here) with the run's Redis as the channel layer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BASE = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-background-networking"]
BIN = Path(sys.executable).parent
PORT = 8323
ADMIN, PASSWORD = "admin", "csp-browser-test-password-1"
HOLDBACK = 7900  # ~400 bar dates replayed by demo_setup: every chart has data
PG_DATABASE = "qs_c_csp"
# The performance page's four sections, one at a time (reporting.pages.performance)
PERFORMANCE = [
    "/performance/",
    "/performance/?section=trades",
    "/performance/?section=attribution",
    "/performance/?section=rolling",
]
PLOTLY_CSS = BASE / "static" / "css" / "plotly.css"
PLOTLY_JS = BASE / "static" / "js" / "plotly.min.js"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]

# Collected in every document before its own scripts run (Playwright's init scripts are
# not subject to the page's CSP). Every wait_for_function predicate is a function: a bare
# expression string is polled through eval(), which the page's CSP refuses.
LISTEN = """window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective
  + ' blocked ' + e.blockedURI + ' at ' + e.sourceFile + ':' + e.lineNumber));"""

# Each [data-figure] div: drawn by Plotly, with its svg, the svg positioned by plotly.css.
CHARTS_JS = """() => Array.from(document.querySelectorAll('[data-figure]')).map(d => {
  const svg = d.querySelector('svg.main-svg');
  return {id: d.id, drawn: d.classList.contains('js-plotly-plot') && svg !== null,
          styled: svg !== null && getComputedStyle(svg).position === 'absolute'};
})"""


def _pg_url(database: str | None = None) -> str:
    raw = os.environ.get("DATABASE_URL", "")
    return raw if database is None else raw.rsplit("/", 1)[0] + "/" + database


def _on_postgresql() -> bool:
    return _pg_url().startswith("postgres") and bool(os.environ.get("REDIS_URL"))


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout_s} s:\n{log.read_text()}")


@contextmanager
def _served(data_dir: Path, **extra: str) -> Iterator[str]:
    """migrate and demo_setup, then daphne (development mode: the CSP is the same in both);
    the logs printed on failure, daphne always stopped."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith(("DJANGO_", "QUANTSITE_"))
    }
    env.update(
        QUANTSITE_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="quantsite.settings",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    log = data_dir / "server.log"
    with log.open("w") as out:
        for args in (["migrate", "--noinput"], ["demo_setup", "--holdback", str(HOLDBACK)]):
            done = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=BASE,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=180,
            )
            assert done.returncode == 0, log.read_text()
        daphne = subprocess.Popen(
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(PORT), "quantsite.asgi:application"],
            cwd=BASE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{PORT}"
        _wait_http(url + "/healthz", daphne, log)
        yield url
    finally:
        daphne.terminate()
        try:
            daphne.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daphne.kill()
            daphne.wait(timeout=5)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("csp")
    if not _on_postgresql():
        with _served(data_dir) as url:
            yield url
        return
    import psycopg

    # created and dropped from the maintenance database: DATABASE_URL's own may not exist
    # (pytest-django works in test_<name>)
    with psycopg.connect(_pg_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    try:
        with _served(
            data_dir, DATABASE_URL=_pg_url(PG_DATABASE), REDIS_URL=os.environ["REDIS_URL"]
        ) as url:
            yield url
    finally:
        with psycopg.connect(_pg_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """One signed-in tab that records every CSP violation: events (per document) and the
    console messages Chromium writes for them."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(LISTEN)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(f"{self.page.url}: {message.text}")

    def open(self, path: str) -> dict:
        """Load the page, wait for its charts, websocket and Swagger UI (where it has
        them); return its CSP header, violations and charts."""
        response = self.page.goto(self.base + path, wait_until="load")
        assert response.status == 200, (path, response.status)
        page = self.page
        page.wait_for_function(
            "() => document.querySelectorAll('[data-figure]').length"
            " === document.querySelectorAll('[data-figure].js-plotly-plot').length"
        )
        live = page.evaluate("document.body.dataset.portfolio !== undefined && !!window.Plotly")
        if live:
            page.wait_for_function(
                "() => document.getElementById('live-status').textContent.startsWith('live')"
            )
        if path.startswith("/api/docs/"):
            page.wait_for_selector(".opblock", timeout=30_000)  # the schema fetched and drawn
        page.wait_for_timeout(300)  # a late violation (a deferred style or handler) shows up
        return {
            "policy": response.headers.get("content-security-policy", ""),
            "violations": page.evaluate("window.__csp"),
            "charts": page.evaluate(CHARTS_JS),
            "live": live,
        }

    def log_in(self) -> None:
        self.open("/accounts/login/")
        self.page.fill("input[name=username]", ADMIN)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base + "/")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(site, chromium) -> Iterator[Visit]:
    visit = Visit(chromium, site)
    visit.log_in()
    yield visit
    visit.close()


def _strategy_pages(visit: Visit) -> list[str]:
    visit.open("/")
    return visit.page.evaluate(
        "Array.from(document.querySelectorAll('#strategy-table tr.link-row'))"
        ".map(tr => tr.dataset.href)"
    )


def _admin_change_form(visit: Visit) -> str:
    visit.open("/admin/portfolio/strategy/")
    href = visit.page.locator("#result_list tbody th a").first.get_attribute("href")
    return href


def test_no_page_reports_a_csp_violation_and_every_chart_and_websocket_works(visit):
    strategies = _strategy_pages(visit)
    assert len(strategies) == 5, strategies
    pages = [
        "/",
        "/risk/",
        *PERFORMANCE,
        *strategies,
        "/config/",
        "/admin/",
        "/admin/portfolio/strategy/",
        _admin_change_form(visit),
        "/admin/risk/risklimit/add/",
        "/api/",
        "/api/strategies/",
        "/api/docs/",
    ]
    seen = {}
    for path in pages:
        seen[path] = result = visit.open(path)
        assert "script-src 'self';" in result["policy"] + ";", (path, result["policy"])
        assert result["violations"] == [], (path, result["violations"])
        for chart in result["charts"]:
            assert chart["drawn"] and chart["styled"], (path, chart)
    assert visit.console == [] and visit.errors == []
    charts = {path: len(result["charts"]) for path, result in seen.items()}
    performance = sum(charts[path] for path in PERFORMANCE)
    assert charts["/"] == 3 and charts["/risk/"] >= 6 and performance >= 12
    assert all(charts[path] == 2 for path in strategies), charts
    live = [path for path, result in seen.items() if result["live"]]
    assert live == ["/", "/risk/", *PERFORMANCE, *strategies]
    # why style-src-attr allows inline attributes: Plotly sets the heatmap's crisp cells
    # in one (refused, the correlation matrix is drawn blurred)
    visit.open("/risk/")
    rendering = visit.page.evaluate(
        "getComputedStyle(document.querySelector('#chart-correlation image')).imageRendering"
    )
    assert rendering == "pixelated"


def test_the_filter_controls_submit_without_an_inline_handler(visit):
    visit.open("/performance/?section=rolling")
    checked = visit.page.locator("input[name=window]:checked").get_attribute("value")
    other = visit.page.locator(f"input[name=window]:not([value='{checked}'])").first
    window = other.get_attribute("value")
    with visit.page.expect_navigation():
        other.check()
    assert f"window={window}" in visit.page.url and "section=rolling" in visit.page.url
    visit.page.wait_for_load_state("load")
    assert visit.page.locator("input[name=window]:checked").get_attribute("value") == window

    [strategy, *_] = _strategy_pages(visit)
    visit.open(strategy)
    select = visit.page.locator("select[name=ticker]")
    ticker = select.locator("option:not([selected])").first.text_content()
    with visit.page.expect_navigation():
        select.select_option(ticker)
    assert f"ticker={ticker}" in visit.page.url
    assert visit.page.evaluate("window.__csp") == [] and visit.console == []


def test_the_listener_reports_an_inline_handler_the_policy_refuses(visit):
    # the negative control: a handler slipped into the page neither runs nor goes unseen
    visit.open("/")
    visit.page.evaluate(
        """document.body.insertAdjacentHTML('beforeend',
             '<img src="data:," onload="window.__ran = 1" onerror="window.__ran = 1">')"""
    )
    visit.page.wait_for_function("() => window.__csp.length > 0")
    assert visit.page.evaluate("window.__ran") is None
    assert visit.page.evaluate("window.__csp")[0].startswith("script-src-attr blocked inline")
    assert visit.console and "Content Security Policy" in visit.console[0]


def test_the_plotly_stylesheet_is_what_the_vendored_plotly_would_inject(chromium):
    page = chromium.new_page()
    try:
        page.set_content("<!doctype html><html><head></head><body></body></html>")  # no CSP
        page.add_script_tag(path=str(PLOTLY_JS))
        injected = page.evaluate(
            "Array.from(document.getElementById('plotly.js-style-global').sheet.cssRules)"
            ".map(r => r.cssText)"
        )
        page.add_style_tag(path=str(PLOTLY_CSS))
        ours = page.evaluate(
            "Array.from(document.styleSheets[document.styleSheets.length - 1].cssRules)"
            ".map(r => r.cssText)"
        )
    finally:
        page.close()
    assert len(injected) > 100
    # regenerate: python reporting/tests/test_csp_browser.py (static/js/README.md)
    assert ours == injected


def plotly_css_write() -> None:
    """Rewrite static/css/plotly.css from static/js/plotly.min.js, through Chromium."""
    from playwright.sync_api import sync_playwright

    header = PLOTLY_CSS.read_text().split("*/", 1)[0] + "*/\n"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_content("<!doctype html><html><head></head><body></body></html>")
        page.add_script_tag(path=str(PLOTLY_JS))
        rules = page.evaluate(
            "Array.from(document.getElementById('plotly.js-style-global').sheet.cssRules)"
            ".map(r => r.cssText)"
        )
        browser.close()
    PLOTLY_CSS.write_text(header + "\n".join(rules) + "\n")


if __name__ == "__main__":
    plotly_css_write()
