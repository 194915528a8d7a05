"""Worker memory over many update cycles (``python bench/memory.py [--cycles N]``, part of
``make bench``). Not a test: it prints figures and asserts nothing about them.

A fresh data dir gets the demo as ``make run`` sets it up (``demo_setup`` with ``--cycles``
bars held back), and a real ``manage.py qcluster`` with one worker (the ORM broker on the
bench's SQLite file, ``QUANTSITE_REPLAY_BARS_PER_UPDATE=1`` as ``make run`` sets it). The
bench enqueues the scheduled update task (``operations.tasks.run_scheduled_update``) one
at a time and waits for each, so every cycle is what the scheduler's worker does once a
minute: load one new bar, apply it to the live portfolio, build every page's cached part
(the demo's schedules are deleted, so no other update runs between them).
After each cycle it reads the resident set size (``VmRSS``) of the cluster's processes;
the worker is the largest (the sentinel, monitor and pusher stay small). The issue's
target: growth under 10 % from after the warm-up (cycle ``WARMUP``) to the last cycle.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 10
TARGET_GROWTH = 0.10


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def rss_mib(pid: int) -> float:
    """``VmRSS`` of ``pid`` in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cluster_start(env: dict) -> subprocess.Popen:
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3)
    return cluster


def cycle(timeout: float) -> tuple[float, str]:
    """One scheduled update through the cluster: seconds, and its result."""
    from django_q.tasks import async_task, result

    t = time.perf_counter()
    task = async_task("operations.tasks.run_scheduled_update", "bench")
    out = result(task, wait=int(timeout * 1000))
    return time.perf_counter() - t, str(out)


def memory_bench(cycles: int) -> dict:
    from django.core.management import call_command
    from django_q.models import Schedule

    from operations.demo import demo_setup

    call_command("migrate", verbosity=0)
    demo_setup(holdback_bars=cycles, admin_user="bench", admin_password="bench-memory")
    Schedule.objects.all().delete()  # only the bench's cycles run (no minute schedule)
    env = {**os.environ, "QUANTSITE_Q_WORKERS": "1", "QUANTSITE_REPLAY_BARS_PER_UPDATE": "1"}
    cluster = cluster_start(env)
    rss, seconds = [], []
    try:
        for k in range(cycles):
            s, out = cycle(timeout=600)
            if not out.startswith("success"):
                raise SystemExit(f"cycle {k + 1}: the update answered {out!r}")
            seconds.append(s)
            rss.append(max(rss_mib(p) for p in descendants(cluster.pid)))
    finally:
        cluster.terminate()
        cluster.wait(30)
    base = rss[min(WARMUP, len(rss)) - 1]
    growth = rss[-1] / base - 1.0
    return {
        "cycles": cycles,
        "rss_after_warmup_mib": round(base, 1),
        "rss_last_mib": round(rss[-1], 1),
        "rss_max_mib": round(max(rss), 1),
        "growth": round(growth, 4),
        "target_growth": TARGET_GROWTH,
        "met": growth < TARGET_GROWTH,
        "cycle_seconds_median": round(sorted(seconds)[len(seconds) // 2], 3),
        "warmup": WARMUP,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("QUANTSITE_DATA_DIR", tempfile.mkdtemp(prefix="quantsite-memory-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    r = memory_bench(args.cycles)
    from bench.report import section_write

    print(
        f"worker memory: {r['cycles']} update cycles (one bar each, pages built), worker RSS "
        f"{r['rss_after_warmup_mib']} MiB after {WARMUP} -> {r['rss_last_mib']} MiB at the "
        f"last (max {r['rss_max_mib']}): growth {r['growth']:.1%} "
        f"(target < {TARGET_GROWTH:.0%}: {'met' if r['met'] else 'NOT met'}); "
        f"a cycle {r['cycle_seconds_median']} s (median)"
    )
    section_write("memory", r)


if __name__ == "__main__":
    main()
