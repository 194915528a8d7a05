"""One state is built once (``reporting.pages.common.stamped_build``), in the file cache
every process of the embedded default shares (settings ``CACHES["pages"]``, Redis when
configured): a second caller of the same state waits for the first's build instead of
repeating it, a caller of another state does not wait, and a failed build leaves the next
caller to build. And pages go out gzipped to a client that accepts it."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.cache.backends.filebased import FileBasedCache

from reporting.pages import common
from reporting.pages.common import stamped_build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pages(tmp_path):
    """A file cache of its own, as the embedded default configures "pages"."""
    return FileBasedCache(str(tmp_path / "pagecache"), {"OPTIONS": {"MAX_ENTRIES": 5000}})


class Build:
    """A build that counts its calls, and holds until released when ``hold``."""

    def __init__(self, value, *, hold: bool = False, fail: bool = False):
        self.value, self.fail, self.calls = value, fail, 0
        self.started, self.release = threading.Event(), threading.Event()
        if not hold:
            self.release.set()

    def __call__(self):
        self.calls += 1
        self.started.set()
        assert self.release.wait(10)
        if self.fail:
            raise RuntimeError("the build failed")
        return self.value


def _in_thread(fn) -> tuple[threading.Thread, dict]:
    out = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as exc:  # the test reads it
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_a_stored_state_is_served_and_a_new_state_built(pages):
    first = Build({"equity": [1.0, 2.0]})
    assert stamped_build(pages, "reporting:overview:1", (1, "a"), first) == {"equity": [1.0, 2.0]}
    again = Build("never")
    assert stamped_build(pages, "reporting:overview:1", (1, "a"), again) == {"equity": [1.0, 2.0]}
    assert (first.calls, again.calls) == (1, 0)
    newer = Build("version 2")
    assert stamped_build(pages, "reporting:overview:1", (2, "a"), newer) == "version 2"
    assert pages.get("reporting:overview:1") == ((2, "a"), "version 2")


def test_a_second_caller_of_one_state_waits_for_the_first_build(pages):
    slow = Build("built once", hold=True)
    thread, out = _in_thread(lambda: stamped_build(pages, "reporting:risk:1", (7,), slow))
    assert slow.started.wait(10)
    second = Build("built twice")
    waiter, waited = _in_thread(lambda: stamped_build(pages, "reporting:risk:1", (7,), second))
    waiter.join(0.3)
    assert waiter.is_alive()  # waiting on the claim, not building
    slow.release.set()
    thread.join(10)
    waiter.join(10)
    assert out == {"value": "built once"} and waited == {"value": "built once"}
    assert (slow.calls, second.calls) == (1, 0)
    assert not [k for k in pages._list_cache_files() if "building" in k]


def test_a_caller_of_another_state_does_not_wait(pages):
    slow = Build("version 1", hold=True)
    thread, _ = _in_thread(lambda: stamped_build(pages, "reporting:risk:1", (1,), slow))
    assert slow.started.wait(10)
    assert stamped_build(pages, "reporting:risk:1", (2,), Build("version 2")) == "version 2"
    slow.release.set()
    thread.join(10)


def test_a_failed_build_leaves_the_waiter_to_build(pages, monkeypatch):
    monkeypatch.setattr(common, "BUILD_POLL_SECONDS", 0.01)
    failing = Build("never", hold=True, fail=True)
    thread, out = _in_thread(lambda: stamped_build(pages, "reporting:risk:1", (3,), failing))
    assert failing.started.wait(10)
    second = Build("built after the failure")
    waiter, waited = _in_thread(lambda: stamped_build(pages, "reporting:risk:1", (3,), second))
    failing.release.set()
    thread.join(10)
    waiter.join(10)
    assert isinstance(out["error"], RuntimeError)
    assert waited == {"value": "built after the failure"} and second.calls == 1
    assert pages.get("reporting:risk:1") == ((3,), "built after the failure")


def test_the_embedded_default_shares_the_pages_cache_in_files_and_redis_when_configured():
    """Every process of one machine reads what another built: files beside the database,
    or Redis (settings.py; the test settings swap in a LocMem one)."""
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.CACHES['pages']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DJANGO_SETTINGS_MODULE="quantsite.settings", QUANTSITE_DATA_DIR="/tmp/qs-pages")
    files = json.loads(_settings_of(code, env))
    assert files["BACKEND"].endswith("FileBasedCache")
    assert files["LOCATION"] == "/tmp/qs-pages/pagecache"
    env["REDIS_URL"] = "redis://127.0.0.1:6379/9"
    redis = json.loads(_settings_of(code, env))
    assert redis["BACKEND"].endswith("RedisCache")
    assert redis["LOCATION"] == "redis://127.0.0.1:6379/9"


def _settings_of(code: str, env: dict) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.django_db
def test_a_page_is_gzipped_for_a_client_that_accepts_it(logged_in):
    plain = logged_in.get("/config/")
    packed = logged_in.get("/config/", headers={"accept-encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
    page = gzip.decompress(packed.content).decode()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert len(packed.content) < len(plain.content)


def test_an_entry_built_by_other_code_is_not_served(tmp_path):
    """The cache outlives the process: after an upgrade, what the old code built is
    rebuilt (``CODE_STAMP``, a digest of the apps' modules and the templates, is part of
    every stamp)."""
    code = "from reporting.pages.common import CODE_STAMP; print(CODE_STAMP)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "quantsite.settings_test"}
    assert _settings_of(f"import django; django.setup(); {code}", env) == common.CODE_STAMP
    copy = tmp_path / "app"
    for app in ("portfolio", "reporting", "risk", "operations", "quantsite", "templates"):
        shutil.copytree(ROOT / app, copy / app, ignore=shutil.ignore_patterns("tests"))
    assert common.code_stamp(copy) == common.CODE_STAMP
    strategy = copy / "reporting" / "pages" / "strategy.py"
    strategy.write_text(strategy.read_text() + "\nMAE_TRADES = 501\n")
    changed = common.code_stamp(copy)
    assert changed != common.CODE_STAMP
    # the pages cache rendered HTML too (common.stored_html): a template is code as well
    part = copy / "templates" / "reporting" / "stored" / "strategy_top.html"
    part.write_text(part.read_text().replace("Round trips", "Round-trips"))
    assert common.code_stamp(copy) not in (changed, common.CODE_STAMP)
