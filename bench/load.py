"""Dashboard pages under concurrent logged-in clients (``python bench/run.py load``, part
of ``make bench``). Not a test: it prints figures and asserts nothing about them.

The demo (``bench/pages.py``'s ``demo_ready``) is served by a real daphne on a free local
port, as ``make run`` serves it (the production settings on the bench's data dir: SQLite,
the pages cache in files). ``--clients`` clients (default 50), each with the admin's
session and its own keep-alive connection, ask for one path ``--requests`` times each
(default 4), one after the other, all clients at once; the server's caches are warm (each
path is asked for once first), as between two updates. For each path: pages per second
(requests / wall time), the latency p50 and p99, and the bytes on the wire (gzip accepted,
as a browser asks). ``/status.json`` is the trivial authenticated JSON view the pages are
compared with. The issue's targets: for the pages p99 under 500 ms and p50 at most 5x
that view's; for the API lists (trades, rebalances, positions: their first page) p99
under 200 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET_P99_MS = 500.0
TARGET_P50_RATIO = 5.0
TARGET_API_P99_MS = 200.0


@dataclass(frozen=True)
class LoadTiming:
    path: str
    clients: int
    requests: int
    errors: int
    pages_per_s: float
    p50_ms: float
    p99_ms: float
    kilobytes: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_start(port: int) -> subprocess.Popen:
    """daphne serving the site on ``port`` with this process's data dir, once it answers."""
    import httpx

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "quantsite.settings"}
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "quantsite.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("bench: daphne did not answer /healthz within 60 s")


def session_cookie(user) -> dict[str, str]:
    """A logged-in session of ``user`` in the database the server reads."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


async def _client(base: str, cookies: dict, path: str, n: int, out: list, sizes: list) -> int:
    import httpx

    errors = 0
    headers = {"accept-encoding": "gzip"}
    async with httpx.AsyncClient(base_url=base, cookies=cookies, headers=headers) as http:
        for _ in range(n):
            t = time.perf_counter()
            try:
                response = await http.get(path, timeout=300)
            except httpx.HTTPError:
                errors += 1
                continue
            out.append(time.perf_counter() - t)
            sizes.append(response.num_bytes_downloaded)
            errors += response.status_code != 200
    return errors


async def path_load(base: str, cookies: dict, path: str, clients: int, n: int) -> LoadTiming:
    latencies: list[float] = []
    sizes: list[int] = []
    t = time.perf_counter()
    errors = await asyncio.gather(
        *(_client(base, cookies, path, n, latencies, sizes) for _ in range(clients))
    )
    wall = time.perf_counter() - t
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return LoadTiming(
        path=path,
        clients=clients,
        requests=len(latencies),
        errors=sum(errors),
        pages_per_s=len(latencies) / wall,
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        kilobytes=(float(np.mean(sizes)) / 1024) if sizes else float("nan"),
    )


def load_table(rows: list[LoadTiming]) -> str:
    trivial = next((r.p50_ms for r in rows if r.path == "/status.json"), float("nan"))
    lines = [
        "| path | clients | requests | errors | pages/s | p50 ms | p99 ms | p50 / status.json "
        "| KB sent | target met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        ratio = r.p50_ms / trivial
        if r.path.startswith("/api/"):
            ok = r.errors == 0 and r.p99_ms < TARGET_API_P99_MS
        else:
            ok = r.errors == 0 and r.p99_ms < TARGET_P99_MS and ratio <= TARGET_P50_RATIO
        lines.append(
            f"| {r.path} | {r.clients} | {r.requests} | {r.errors} | {r.pages_per_s:,.1f} "
            f"| {r.p50_ms:,.0f} | {r.p99_ms:,.0f} | {ratio:,.1f}x | {r.kilobytes:,.0f} "
            f"| {'yes' if ok else 'NO'} |"
        )
    return "\n".join(lines)


def load_bench(*, clients: int = 50, requests: int = 4, out: str | None = None) -> None:
    from django.conf import settings

    from bench.pages import demo_ready
    from reporting import selectors

    portfolio, user = demo_ready()
    strategy = selectors.strategy_list(portfolio=portfolio)[0].name
    pages = ["/", "/risk/", "/performance/", f"/strategy/{strategy}/"]
    lists = ["/api/trades/", "/api/rebalances/", "/api/positions/"]  # the API's first pages
    paths = ["/status.json", *pages, *lists]
    port = free_port()
    server = server_start(port)
    base = f"http://127.0.0.1:{port}"
    cookies = session_cookie(user)
    try:
        asyncio.run(_warm(base, cookies, paths))
        rows = [asyncio.run(path_load(base, cookies, p, clients, requests)) for p in paths]
    finally:
        server.terminate()
        server.wait(30)
    table = load_table(rows)
    print(f"load: {clients} concurrent logged-in clients x {requests} requests, one daphne")
    print(table)
    folder = Path(out or settings.DATA_DIR)
    (folder / "load.md").write_text(table + "\n")
    (folder / "load.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    print(f"load: written to {folder / 'load.md'} and {folder / 'load.json'}")
    from bench.report import section_write

    figures = {"clients": clients, "requests": requests, "rows": [asdict(r) for r in rows]}
    section_write("load", figures)


async def _warm(base: str, cookies: dict, paths: list[str]) -> None:
    for path in paths:
        await path_load(base, cookies, path, 1, 1)
