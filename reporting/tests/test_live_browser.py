"""Acceptance of the live pages (issue 10): a real ``manage.py qcluster`` beside a real
``daphne`` on a fresh data dir, real headless Chromium. The open overview follows a
scheduled bar and then an Update-now bar in place: the as-of date and the total value
change, ``window.__marker`` survives (no reload), a legend toggle survives the redraw.

Once on SQLite with the ORM broker and the in-memory channel layer (the push crosses
from qcluster to daphne through the committed state version alone), once on PostgreSQL
with Redis (broker and channels-redis), in a database of its own created and dropped
here. django-q2's guard calls the scheduler about every 30 s of cluster uptime and the
demo's Schedule is due at once, so the first scheduled bar lands ~30 s after qcluster
starts; Update now goes through the ORM/Redis broker in about a second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-background-networking"]
BIN = Path(sys.executable).parent
ADMIN, PASSWORD = "admin", "acceptance-test-password-1"
HOLDBACK = 7900  # the demo applies ~400 bar dates (a few seconds), keeps the rest back
SCHEDULED_BAR_TIMEOUT_S = 75
UPDATE_NOW_TIMEOUT_S = 30
PG_DATABASE = "qs_a_browser"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


def _env(data_dir: Path, **extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        QUANTSITE_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="quantsite.settings",
        QUANTSITE_REPLAY_BARS_PER_UPDATE="1",
        QUANTSITE_SCENARIOS_AFTER_UPDATE="0",  # tested on their own
        QUANTSITE_Q_WORKERS="1",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _tail(path: Path, n: int = 60) -> str:
    if not path.exists():
        return f"({path.name}: no output)"
    lines = path.read_text(errors="replace").splitlines()[-n:]
    return f"--- {path.name} (last {len(lines)} lines) ---\n" + "\n".join(lines)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _wait_http(url: str, processes, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in processes:
            assert p.poll() is None, f"{p.args[1:3]} exited with {p.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


@contextmanager
def served(data_dir: Path, port: int, **extra):
    """migrate + demo_setup, then qcluster and daphne; their logs printed on failure;
    both always stopped (their whole process groups)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _env(data_dir, **extra)
    logs = [data_dir / "setup.log", data_dir / "qcluster.log", data_dir / "daphne.log"]
    processes: list[subprocess.Popen] = []
    base = Path(settings.BASE_DIR)
    try:
        with logs[0].open("w") as out:
            for args in (["migrate", "--noinput"], ["demo_setup", "--holdback", str(HOLDBACK)]):
                subprocess.run(
                    [sys.executable, "manage.py", *args],
                    cwd=base,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=120,
                )
        for log, args in (
            (logs[1], [sys.executable, "manage.py", "qcluster"]),
            (
                logs[2],
                [
                    str(BIN / "daphne"),
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "quantsite.asgi:application",
                ],
            ),
        ):
            with log.open("w") as out:
                processes.append(
                    subprocess.Popen(
                        args,
                        cwd=base,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/accounts/login/", processes)
        yield url
    except BaseException:
        print("\n".join(_tail(log) for log in logs))
        raise
    finally:
        for p in processes:
            _stop(p)


def _shown(page) -> dict:
    return page.evaluate(
        """() => ({asOf: document.getElementById('as-of').textContent.trim(),
                   total: document.getElementById('total-value').textContent.trim(),
                   marker: window.__marker,
                   hidden: (document.getElementById('chart-equity').data || [])
                     .filter(t => t.visible === 'legendonly').map(t => t.name)})"""
    )


def _wait_for_next_bar(page, before: dict, timeout_s: float) -> dict:
    page.wait_for_function(
        f"() => document.getElementById('as-of').textContent.trim() !== {before['asOf']!r}",
        timeout=timeout_s * 1000,
    )
    after = _shown(page)
    assert after["asOf"] > before["asOf"], (before, after)
    assert after["total"] != before["total"], (before, after)
    assert after["marker"] == 1, "the page reloaded"
    assert after["hidden"] == before["hidden"] == ["momentum_60"], "legend toggle lost"
    notice = page.locator("#live-notice")
    assert notice.is_visible() and notice.text_content().startswith(after["asOf"] + ": ")
    return after


def _acceptance(url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(url + "/accounts/login/")
            page.fill("input[name=username]", ADMIN)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_url(url + "/")
            page.wait_for_function(
                "() => document.querySelectorAll('.js-plotly-plot').length === 3"
            )
            page.wait_for_function(
                "() => document.getElementById('live-status').textContent.startsWith('live')"
            )
            page.locator("#chart-equity g.traces", has_text="momentum_60").locator(
                ".legendtoggle"
            ).click()
            page.wait_for_function(
                "() => document.getElementById('chart-equity').data"
                ".some(t => t.name === 'momentum_60' && t.visible === 'legendonly')"
            )
            page.evaluate("window.__marker = 1")
            first = _shown(page)
            # the scheduled update (qcluster's scheduler) releases the next bar
            second = _wait_for_next_bar(page, first, SCHEDULED_BAR_TIMEOUT_S)
            # Update now: 202, the run followed to its end, the bar through the push
            page.click("#update-now")
            _wait_for_next_bar(page, second, UPDATE_NOW_TIMEOUT_S)
            page.wait_for_function(
                "() => document.getElementById('update-status').textContent"
                ".startsWith('update done')",
                timeout=UPDATE_NOW_TIMEOUT_S * 1000,
            )
            assert errors == []
        finally:
            browser.close()


def test_the_overview_follows_scheduled_and_update_now_bars_on_sqlite(tmp_path):
    with served(tmp_path / "sqlite", 8100) as url:
        _acceptance(url)


def _pg_url(database: str | None = None) -> str:
    raw = os.environ.get("DATABASE_URL", "")
    return raw if database is None else raw.rsplit("/", 1)[0] + "/" + database


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres")
    or not os.environ.get("REDIS_URL"),
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL",
)
def test_the_overview_follows_scheduled_and_update_now_bars_on_postgresql_with_redis(tmp_path):
    import psycopg
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # no stale tasks or groups
    with psycopg.connect(_pg_url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    try:
        with served(
            tmp_path / "pg",
            8101,
            DATABASE_URL=_pg_url(PG_DATABASE),
            REDIS_URL=os.environ["REDIS_URL"],
        ) as url:
            _acceptance(url)
    finally:
        with psycopg.connect(_pg_url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
