"""Dashboard page server times on the demo (``python bench/run.py pages``, part of
``make bench``). Not a test: it prints figures and asserts nothing about them.

The demo is set up as ``make run`` sets it up (``demo_setup``, idempotent: on a data dir
that already holds it nothing is replayed). Each page is requested through Django's test
Client, logged in as the demo admin, so the time is the server's (middleware, views,
queries, templates), without the network or the browser:

  * after update: the first request after ``run_update`` applied one new bar (what the
    first visitor after each bar waits: the update builds the pages' cached part before
    it returns, ``reporting.pages.warm``; the warm-up's own time is printed);
  * cold: the first request after the caches are cleared (a page nothing built yet: the
    pages cache per committed state, ``reporting.pages.common.state_cached``);
  * warm: the median of ``--repeat`` further requests (default 5);
  * queries: the database queries of one warm request; size: the response body.

The issue's target is every page under 300 ms on the demo, warm and after an update.
``--profile`` adds the top functions of a cold request of each page (cProfile, cumulative
time). The table is also written as JSON and Markdown (``--out DIR``, default the data
dir).
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

TARGET_MS = 300.0


@dataclass(frozen=True)
class PageTiming:
    path: str
    status: int
    after_update_ms: float
    cold_ms: float
    warm_ms: float
    queries: int
    kilobytes: float

    @property
    def ok(self) -> bool:
        return self.status == 200 and max(self.warm_ms, self.after_update_ms) < TARGET_MS


def demo_ready() -> tuple[object, object]:
    """The demo's live portfolio and its admin user, set up first when missing."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from operations.demo import demo_setup
    from quantsite.progress import Progress
    from reporting import selectors

    call_command("migrate", verbosity=0)
    t = time.perf_counter()
    r = demo_setup(
        holdback_bars=250,
        admin_user="admin",
        admin_password="bench-password",
        bars_progress=Progress(sys.stdout, label="demo: storing prices", unit="bars"),
        dates_progress=Progress(sys.stdout, label="demo: applying history"),
    )
    if r.dates_applied:
        print(
            f"demo: {r.bars_added:,} bars, {r.dates_applied:,} dates in "
            f"{time.perf_counter() - t:.1f} s"
        )
    user = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    return selectors.portfolio_live_get(), user


def page_paths(portfolio) -> list[str]:
    from reporting import selectors
    from reporting.pages.performance import DEFAULT_SECTION, SECTIONS

    strategies = [f"/strategy/{s.name}/" for s in selectors.strategy_list(portfolio=portfolio)]
    performance = [
        "/performance/" + ("" if key == DEFAULT_SECTION else f"?section={key}") for key in SECTIONS
    ]
    return ["/", "/risk/", *performance, *strategies, "/config/", "/scenarios/"]


def caches_clear() -> None:
    from django.core.cache import caches

    caches["default"].clear()
    caches["pages"].clear()


def after_update(client, paths: list[str]) -> tuple[float, dict[str, float]]:
    """Serve every page once, apply one more bundled bar (``run_update``, the demo's
    holdback) and time the first request of each page after it: the update's seconds (its
    warm-up included) and ms by path."""
    from django.conf import settings

    from operations.update import run_update

    for path in paths:  # a server that has been serving (templates loaded, state built)
        client.get(path)
    settings.QUANTSITE_REPLAY_BARS_PER_UPDATE = 1
    t = time.perf_counter()
    result = run_update(trigger="bench")
    update_s = time.perf_counter() - t
    if result.dates_applied != 1:
        raise SystemExit(f"bench: the update applied {result.dates_applied} bars, not 1")
    first = {}
    for path in paths:
        t = time.perf_counter()
        client.get(path)
        first[path] = 1000 * (time.perf_counter() - t)
    return update_s, first


def page_time(client, path: str, repeat: int, after_update_ms: float) -> PageTiming:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    caches_clear()
    t = time.perf_counter()
    response = client.get(path)
    cold = time.perf_counter() - t
    warm = []
    for _ in range(repeat):
        t = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        warm.append(time.perf_counter() - t)
    return PageTiming(
        path=path,
        status=response.status_code,
        after_update_ms=after_update_ms,
        cold_ms=1000 * cold,
        warm_ms=1000 * statistics.median(warm),
        queries=len(queries),
        kilobytes=len(response.content) / 1024,
    )


def page_profile(client, path: str, top: int = 15) -> str:
    """The project's own functions by cumulative time, then every function by own time,
    of one cold request."""
    import re

    caches_clear()
    profiler = cProfile.Profile()
    profiler.enable()
    client.get(path)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    root = re.escape(str(Path(__file__).resolve().parents[1])) + "/(?!\\.venv)"
    stats.sort_stats("cumulative").print_stats(root, top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def timings_table(rows: list[PageTiming]) -> str:
    """A Markdown table (also readable as plain text)."""
    lines = [
        "| page | status | after update ms | cold ms | warm ms | queries | KB | < 300 ms |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.path} | {r.status} | {r.after_update_ms:,.0f} | {r.cold_ms:,.0f} "
            f"| {r.warm_ms:,.0f} | {r.queries} | {r.kilobytes:,.0f} | {'yes' if r.ok else 'NO'} |"
        )
    return "\n".join(lines)


def pages_bench(*, repeat: int = 5, profile: bool = False, out: str | None = None) -> None:
    from django.conf import settings
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    portfolio, user = demo_ready()
    client = Client()
    client.force_login(user)
    paths = page_paths(portfolio)
    update_s, first = after_update(client, paths)
    print(f"pages: one-bar run_update {update_s:.2f} s, its pages warm-up included")
    rows = []
    for path in paths:
        rows.append(page_time(client, path, repeat, first[path]))
        if profile:
            print(f"--- profile of a cold {path}")
            print(page_profile(client, path))
    table = timings_table(rows)
    print(
        f"pages: server time on the demo (warm = median of {repeat}; "
        "target < 300 ms warm and after an update)"
    )
    print(table)
    folder = Path(out or settings.DATA_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pages.md").write_text(table + "\n")
    (folder / "pages.json").write_text(
        json.dumps([{**asdict(r), "ok": r.ok} for r in rows], indent=1)
    )
    print(f"pages: written to {folder / 'pages.md'} and {folder / 'pages.json'}")
    from bench.report import section_write

    rows = [{**asdict(r), "ok": r.ok} for r in rows]
    section_write("pages", {"update_s": update_s, "repeat": repeat, "rows": rows})
