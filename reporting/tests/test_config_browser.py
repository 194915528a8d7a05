"""The configuration controls in real headless Chromium against a real ``daphne`` (issue
10): a staff user is refused an allocation sum of 1.70 with nothing changed, then pauses a
strategy and sees who did it, with before and after, in the page's audit trail; a plain
user sees no controls; a table the user sorted keeps its sort when an operator change
in another tab makes the open overview replace it in place (no reload); and the
configuration page itself is live (issue 14: it loaded no script and said "offline").

The server is daphne alone (no qcluster: no bar arrives during the test, so every live
update here is an operator change, pushed through the committed state version), on a
fresh data dir and port 8200, set up by ``migrate`` and ``demo_setup`` like the live
acceptance test (``test_live_browser.served``, whose helpers it reuses).
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from reporting.tests.test_live_browser import (
    ADMIN,
    CHROMIUM,
    CHROMIUM_ARGS,
    HOLDBACK,
    PASSWORD,
    _env,
    _stop,
    _tail,
    _wait_http,
)

PORT = 8200  # this module's own (the live acceptance test has 8100/8101)
VIEWER = "viewer"
PG_DATABASE = "qs_l_web"  # created and dropped here, beside the run's own database

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


def _manage(env: dict, log, *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=Path(settings.BASE_DIR),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        check=True,
        timeout=120,
    )


@contextmanager
def web_only(data_dir: Path, port: int, **extra):
    """migrate + demo_setup + a plain user, then daphne alone; its log printed on
    failure; always stopped (its process group)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _env(data_dir, **extra)
    logs = [data_dir / "setup.log", data_dir / "daphne.log"]
    daphne = None
    try:
        with logs[0].open("w") as out:
            _manage(env, out, "migrate", "--noinput")
            _manage(env, out, "demo_setup", "--holdback", str(HOLDBACK))
            _manage(
                env,
                out,
                "shell",
                "-c",
                "from django.contrib.auth.models import User; "
                f"User.objects.create_user({VIEWER!r}, password={PASSWORD!r})",
            )
        with logs[1].open("w") as out:
            daphne = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "daphne"),
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "quantsite.asgi:application",
                ],
                cwd=Path(settings.BASE_DIR),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/accounts/login/", [daphne])
        yield url
    except BaseException:
        print("\n".join(_tail(log) for log in logs))
        raise
    finally:
        if daphne is not None:
            _stop(daphne)


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the module (Playwright's sync API allows one at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, chromium):
    """The served demo (SQLite, in-memory channel layer) and the browser."""
    with web_only(tmp_path_factory.mktemp("config-browser"), PORT) as url:
        yield url, chromium


def _watched(page):
    """``page`` collecting its JavaScript errors in ``page.errors``."""
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


def _logged_in(site, username: str):
    url, browser = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = _watched(context.new_page())
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(url + "/")
    return context, page


def _pause_an_active_strategy(page) -> str:
    """Press the first Pause button on the open configuration page; the strategy's name
    once the page shows it paused."""
    button = page.locator("button[id^=pause-]").first
    name = button.get_attribute("id").removeprefix("pause-")
    button.click()
    page.wait_for_selector(f"#resume-{name}")
    return name


def _audit_rows(page) -> list[str]:
    return page.locator("#audit tbody tr").all_inner_texts()


def _allocation_row(page, name: str) -> str:
    return page.locator("#allocations tbody tr", has_text=name).first.inner_text()


def test_a_plain_user_sees_the_configuration_without_controls(site):
    url, _ = site
    context, page = _logged_in(site, VIEWER)
    try:
        page.goto(url + "/config/")
        assert "Read-only" in page.locator("#actions").inner_text()
        assert page.locator("main form").count() == 0
        assert page.locator("#pause-momentum_60").count() == 0
        assert page.locator("#allocations tbody tr", has_text="momentum_60").count() == 1
        assert page.errors == []
    finally:
        context.close()


def test_a_staff_user_is_refused_a_bad_sum_then_pauses_and_sees_the_audit_trail(site):
    url, _ = site
    context, page = _logged_in(site, ADMIN)
    try:
        page.goto(url + "/config/")
        audit, row = _audit_rows(page), _allocation_row(page, "momentum_60")
        assert "active" in row and "20.0%" in row
        # 0.90 instead of 0.20: the static allocations sum to 1.70
        page.fill("#control-allocations input[name=allocation_momentum_60]", "0.90")
        page.click("#control-allocations button[type=submit]")
        page.wait_for_selector("#control-messages")
        message = page.locator("#control-messages").inner_text()
        assert "Refused, nothing changed" in message and "sum to 1.7" in message, message
        assert (_audit_rows(page), _allocation_row(page, "momentum_60")) == (audit, row)

        page.click("#pause-momentum_60")
        page.wait_for_selector("#resume-momentum_60")
        assert "momentum_60 paused" in page.locator("#control-messages").inner_text()
        assert "paused" in _allocation_row(page, "momentum_60")
        rows = _audit_rows(page)
        assert rows[1:] == audit[: len(rows) - 1]  # one new row on top (the list is capped)
        newest = rows[0]
        for shown in (ADMIN, "page (127.0.0.1)", "momentum_60", "status"):
            assert shown in newest, newest
        assert '"active" → "paused"' in newest, newest
        assert page.errors == []
    finally:
        context.close()


SORT_STATE_JS = """() => {
  const table = document.getElementById('strategy-table');
  return {
    names: Array.from(table.tBodies[0].rows).map(r => r.cells[0].textContent.trim()),
    sorted: Array.from(table.tHead.rows[0].cells)
      .map(th => th.textContent.trim() + ':' + (th.getAttribute('aria-sort') || ''))
      .filter(s => !s.endsWith(':')),
    replaced: table.__original !== true,
    marker: window.__marker,
  };
}"""


def test_a_sorted_table_keeps_its_sort_when_a_live_update_replaces_it(site):
    url, _ = site
    context, overview = _logged_in(site, ADMIN)
    try:
        overview.wait_for_function(
            "() => document.getElementById('live-status').textContent.startsWith('live')"
        )
        served = overview.evaluate(SORT_STATE_JS)["names"]
        header = overview.locator("#strategy-table thead th").first  # Strategy (text)
        header.click()  # first click: descending
        sorted_state = overview.evaluate(SORT_STATE_JS)
        if sorted_state["names"] == served:  # already in that order: ascending differs
            header.click()
            sorted_state = overview.evaluate(SORT_STATE_JS)
        assert sorted_state["names"] != served and sorted_state["sorted"]
        overview.evaluate(
            "window.__marker = 1; document.getElementById('strategy-table').__original = true"
        )

        config = _watched(context.new_page())  # another tab of the same staff user
        config.goto(url + "/config/")
        name = _pause_an_active_strategy(config)

        notice = overview.locator("#live-notice")
        notice.wait_for(state="visible", timeout=10_000)
        assert notice.inner_text().startswith("Configuration changed"), notice.inner_text()
        after = overview.evaluate(SORT_STATE_JS)
        assert after["replaced"], "the table was not replaced in place"
        assert after["marker"] == 1, "the page reloaded"
        assert (after["names"], after["sorted"]) == (sorted_state["names"], sorted_state["sorted"])
        row = overview.locator("#strategy-table tbody tr", has_text=name).first
        assert "paused" in row.inner_text()
        assert overview.errors == [] and config.errors == []
    finally:
        context.close()


def test_the_configuration_page_is_live_and_shows_another_tabs_change_in_place(site):
    """Issue 14: the page loaded no script, so its indicator said "offline" on a connected
    site. It loads dashboard.js (no Plotly: it draws no chart), says "live", and a pause or
    resume from another user's tab reaches its allocation table without a reload."""
    url, _ = site
    viewer_context, viewer = _logged_in(site, VIEWER)
    staff_context, staff = _logged_in(site, ADMIN)
    try:
        viewer.goto(url + "/config/")
        viewer.wait_for_function(
            "() => document.getElementById('live-status').textContent.startsWith('live')"
        )
        assert viewer.evaluate("typeof window.Plotly") == "undefined"
        viewer.evaluate("window.__marker = 1")
        staff.goto(url + "/config/")
        # the first book's Pause or Resume (earlier tests here paused some)
        button = staff.locator("button[id^=pause-], button[id^=resume-]").first
        verb, name = button.get_attribute("id").split("-", 1)
        button.click()
        staff.wait_for_selector(f"#{'resume' if verb == 'pause' else 'pause'}-{name}")
        notice = viewer.locator("#live-notice")
        notice.wait_for(state="visible", timeout=10_000)
        assert notice.inner_text().startswith("Configuration changed"), notice.inner_text()
        status = "paused" if verb == "pause" else "active"
        viewer.wait_for_function(
            "([name, status]) => Array.from(document.querySelectorAll('#allocations tbody tr'))"
            ".some(tr => tr.cells[0].textContent.trim() === name"
            " && tr.querySelector('.badge').textContent.trim() === status)",
            arg=[name, status],
        )
        assert viewer.evaluate("window.__marker") == 1, "the page reloaded"
        assert viewer.errors == [] and staff.errors == []
    finally:
        viewer_context.close()
        staff_context.close()


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres")
    or not os.environ.get("REDIS_URL"),
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL",
)
def test_an_operator_change_reaches_the_open_overview_on_postgresql_with_redis(tmp_path, chromium):
    """The same push on PostgreSQL with channels-redis (a database of its own)."""
    import psycopg
    import redis

    own = os.environ["DATABASE_URL"]
    server = own.rsplit("/", 1)[0]
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    with psycopg.connect(own, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    try:
        with web_only(
            tmp_path / "pg",
            PORT + 1,
            DATABASE_URL=f"{server}/{PG_DATABASE}",
            REDIS_URL=os.environ["REDIS_URL"],
        ) as url:
            context, overview = _logged_in((url, chromium), ADMIN)
            try:
                overview.wait_for_function(
                    "() => document.getElementById('live-status').textContent.startsWith('live')"
                )
                config = _watched(context.new_page())
                config.goto(url + "/config/")
                name = _pause_an_active_strategy(config)
                notice = overview.locator("#live-notice")
                notice.wait_for(state="visible", timeout=10_000)
                assert notice.inner_text().startswith("Configuration changed")
                row = overview.locator("#strategy-table tbody tr", has_text=name)
                assert "paused" in row.first.inner_text()
                assert overview.errors == [] and config.errors == []
            finally:
                context.close()
    finally:
        with psycopg.connect(own, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
