"""One live push to many open pages (``python bench/push.py [--clients N] [--pushes K]``,
part of ``make bench``). Not a test: it prints figures and asserts nothing about them.

The demo (``bench/pages.py``'s ``demo_ready``) is served by a real daphne, once per
channel-layer configuration: the embedded default (in-memory layer: the version reaches
daphne through its watcher of the committed versions, ``reporting.live``, every
``POLL_S``) and channels-redis (``REDIS_URL``; the commit's group_send usually gets there
first). ``--clients`` websockets (default 50), each with the admin's session, follow the
live portfolio; the bench commits ``--pushes`` operator touches one after another
(``state_touch``, as a configuration edit does: a new version, pushed after commit) and
times, for every client, the first message carrying each new version from just before the
commit. It then listens one more second for duplicates. The issue's target: p99 under
250 ms, exactly one message per client and version, in both configurations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET_P99_MS = 250.0
REDIS_BENCH_URL = "redis://127.0.0.1:6379/14"


async def _follow(url: str, headers: dict, counts: dict, seen: dict, ready) -> None:
    import websockets

    async with websockets.connect(url, additional_headers=headers) as ws:
        ready.set_result(None)
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") == "snapshot.update":
                v = msg["version"]
                counts[v] = counts.get(v, 0) + 1
                seen.setdefault(v, time.perf_counter())


async def _push_run(port: int, cookie: str, portfolio, clients: int, pushes: int) -> dict:
    from channels.db import database_sync_to_async
    from django.db import transaction

    from portfolio.services.live import state_touch, state_version_of

    since = await database_sync_to_async(lambda: state_version_of(_fresh(portfolio)))()
    url = f"ws://127.0.0.1:{port}/ws/portfolio/{portfolio.pk}/?since={since}"
    headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
    loop = asyncio.get_running_loop()
    books = [({}, {}, loop.create_future()) for _ in range(clients)]
    tasks = [asyncio.create_task(_follow(url, headers, *b)) for b in books]
    await asyncio.gather(*(b[2] for b in books))
    await asyncio.sleep(1.0)  # every consumer has joined its group and the watcher
    latencies, sent = [], []

    def touch() -> int:
        with transaction.atomic():
            return state_touch(_fresh(portfolio))

    for _ in range(pushes):
        t = time.perf_counter()
        version = await database_sync_to_async(touch)()
        sent.append(version)
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline and not all(version in b[1] for b in books):
            await asyncio.sleep(0.005)
        latencies += [(b[1][version] - t) * 1000 for b in books if version in b[1]]
    await asyncio.sleep(1.0)
    for task in tasks:
        task.cancel()
    counts = [b[0].get(v, 0) for b in books for v in sent]
    ms = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "clients": clients,
        "pushes": pushes,
        "delivered": sum(c > 0 for c in counts),
        "expected": clients * pushes,
        "duplicates": sum(max(c - 1, 0) for c in counts),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def _fresh(portfolio):
    from portfolio.models import Portfolio

    return Portfolio.objects.select_related("state_version").get(pk=portfolio.pk)


def one_layer(clients: int, pushes: int) -> dict:
    """The bench in this process's configuration (``REDIS_URL`` set or not)."""
    from django.conf import settings

    from bench.load import free_port, server_start, session_cookie
    from bench.pages import demo_ready

    portfolio, user = demo_ready()
    port = free_port()
    server = server_start(port)
    name, value = next(iter(session_cookie(user).items()))
    try:
        r = asyncio.run(_push_run(port, f"{name}={value}", portfolio, clients, pushes))
    finally:
        server.terminate()
        server.wait(30)
    r["layer"] = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    return r


def push_bench(clients: int, pushes: int) -> list[dict]:
    """Both configurations, each in its own process (settings read ``REDIS_URL`` once)."""
    rows = []
    for redis in (None, REDIS_BENCH_URL):
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        if redis:
            env["REDIS_URL"] = redis
        cmd = [sys.executable, __file__, "--one", "--clients", str(clients)]
        out = subprocess.run(
            [*cmd, "--pushes", str(pushes)], env=env, cwd=ROOT, capture_output=True, text=True
        )
        if out.returncode != 0:
            raise SystemExit(f"push bench ({redis or 'in-memory'}) failed:\n{out.stderr}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--pushes", type=int, default=5)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantsite.settings")
    os.environ.setdefault("QUANTSITE_DATA_DIR", tempfile.mkdtemp(prefix="quantsite-push-"))
    if args.one:
        import django

        django.setup()
        print(json.dumps(one_layer(args.clients, args.pushes)))
        return
    from bench.report import section_write

    rows = push_bench(args.clients, args.pushes)
    for r in rows:
        met = r["p99_ms"] < TARGET_P99_MS and r["duplicates"] == 0
        met = met and r["delivered"] == r["expected"]
        print(
            f"push ({r['layer']}): {r['pushes']} pushes x {r['clients']} websockets: "
            f"delivered {r['delivered']}/{r['expected']}, duplicates {r['duplicates']}, "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms "
            f"(target p99 < {TARGET_P99_MS:.0f} ms, one each: {'met' if met else 'NOT met'})"
        )
    section_write("push", {"rows": rows})


if __name__ == "__main__":
    main()
