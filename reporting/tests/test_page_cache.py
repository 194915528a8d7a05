"""One state is built once (``reporting.pages.common.stamped_build``), in the file cache
every process of the embedded default shares (settings ``CACHES["pages"]``): a second
caller of the same state waits for the first's build instead of repeating it, a caller of
another state does not wait, and a failed build leaves the next caller to build."""

from __future__ import annotations

import threading

import pytest
from django.core.cache.backends.filebased import FileBasedCache

from reporting.pages import common
from reporting.pages.common import stamped_build


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
