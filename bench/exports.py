"""Export timings (``python bench/exports.py [TRADES]``, default 100,000). Not a test: it
prints timings and asserts nothing about them. Throwaway SQLite database (or
DATABASE_URL when set).

Figures, for a portfolio holding TRADES fills:
  * the first request of the process (it imports the URLconf, some 0.5 s, once per
    server process, whatever the URL), apart from the export requests;
  * the request ``POST /export/trades.<fmt>`` (the "Prepare the file" button; a GET of
    a large export only answers that page): how long until it answers (a 303 to the
    job's page above ``QUANTSITE_EXPORT_DIRECT_ROWS`` rows; the acceptance is under 1 s);
  * a poll of the job's page while it is queued;
  * the background job itself (``reporting.tasks.write_export``), run in a fresh
    process as a worker would run it: its time, and its peak resident memory above what
    the process held once Django and the export code were imported;
  * the same for CSV;
  * the strategy page's trades CSV (``/strategy/<name>/?format=csv``) of the strategy
    holding them, in a fresh process through Django's ASGI path (daphne serves the
    site): until the response object exists, until its first chunk, until its last,
    and the process's peak resident memory above its imported baseline.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QUANTSITE_DATA_DIR", tempfile.mkdtemp(prefix="quantsite-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantsite.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def _rss_mb() -> float:
    """This process's peak resident memory (MB). Linux's VmHWM, not getrusage's
    ru_maxrss: a process started by this one would inherit the parent's ru_maxrss across
    exec, VmHWM belongs to the new address space."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB


def job(job_id: int) -> None:
    """The worker's side (``--job ID``): run one export job, print its figures as JSON."""
    from reporting import tasks

    base_mb = _rss_mb()
    t = time.perf_counter()
    result = tasks.write_export(job_id)
    seconds = time.perf_counter() - t
    print(json.dumps({"result": result, "s": seconds, "base_mb": base_mb, "peak_mb": _rss_mb()}))


def strategy_csv(name: str) -> None:
    """``--strategy-csv NAME``: download the strategy page's CSV as daphne would send it
    (``async for`` over the response, as ``ASGIHandler.send_response`` does); figures as
    JSON."""
    from asgiref.sync import async_to_sync
    from django.contrib.auth import get_user_model
    from django.test import AsyncClient
    from django.urls import get_resolver

    client = AsyncClient()
    client.force_login(get_user_model().objects.get(username="bench"))

    async def download() -> dict:
        t = time.perf_counter()
        response = await client.get(f"/strategy/{name}/?format=csv")
        answered, first, size = time.perf_counter() - t, None, 0
        async for part in response:
            first = time.perf_counter() - t if first is None else first
            size += len(part)
        return {"answered": answered, "first": first, "s": time.perf_counter() - t, "size": size}

    _ = get_resolver().url_patterns  # import the URLconf (every view) before the baseline
    base_mb = _rss_mb()
    figures = async_to_sync(download)()
    print(json.dumps({**figures, "base_mb": base_mb, "peak_mb": _rss_mb()}))


def _job_in_worker(job_id: int) -> dict:
    return _child("--job", str(job_id))


def _child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(n: int) -> None:
    from datetime import date, timedelta

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from operations.config import portfolio_configure
    from portfolio.feeds import BundledProvider
    from portfolio.models import Instrument, Trade
    from portfolio.services.config import allocation_spec_read
    from portfolio.services.prices import prices_load
    from reporting import selectors
    from reporting.models import ExportJob

    call_command("migrate", verbosity=0)
    prices_load(provider=BundledProvider(), strict=True)
    spec = allocation_spec_read(ROOT / "config" / "strategy_allocation.yaml")
    portfolio = portfolio_configure(spec=spec, source="bench")
    strategy = portfolio.strategies.order_by("id").first()
    aapl = Instrument.objects.get(ticker="AAPL")
    Trade.objects.bulk_create(
        (
            Trade(
                strategy=strategy, instrument=aapl, date=date(2000, 1, 3) + timedelta(i // 50),
                side="buy", quantity=1 + i / 7, price=10 + i / 3, value=(1 + i / 7) * (10 + i / 3),
                cost=0.01, reason="signal",
            )
            for i in range(n)
        ),
        batch_size=5000,
    )  # fmt: skip
    user = get_user_model().objects.create_user("bench", password="bench-pass-1")
    client = Client()
    client.force_login(user)
    t = time.perf_counter()
    client.get("/export/jobs/0/")  # a 404; the process's first request imports the URLconf
    print(
        f"first request of the process (URLconf import): {(time.perf_counter() - t) * 1000:.0f} ms"
    )
    t = time.perf_counter()
    selectors.trade_frame(portfolio=portfolio, detail=True)
    print(f"selector read of {n:,} trades (trade_frame): {time.perf_counter() - t:.2f} s")
    for fmt in ("xlsx", "csv"):
        t = time.perf_counter()
        response = client.post(f"/export/trades.{fmt}")
        request_s = time.perf_counter() - t
        t = time.perf_counter()
        client.get(response["Location"])
        poll_s = time.perf_counter() - t
        export = ExportJob.objects.get(fmt=fmt)
        worker = _job_in_worker(export.pk)
        export.refresh_from_db()
        size_mb = (Path(settings.DATA_DIR) / "exports" / export.file_name).stat().st_size / 1e6
        print(
            f"{fmt}: {n:,} trades: request {request_s * 1000:.0f} ms "
            f"(HTTP {response.status_code}), job page {poll_s * 1000:.0f} ms; "
            f"job {worker['s']:.1f} s ({export.status}, {export.rows_done:,} rows, "
            f"{size_mb:.1f} MB file), worker peak RSS {worker['peak_mb']:.0f} MB "
            f"(+{worker['peak_mb'] - worker['base_mb']:.0f} MB over {worker['base_mb']:.0f} MB "
            "once imported)"
        )
    print(f"(answered directly up to {settings.QUANTSITE_EXPORT_DIRECT_ROWS:,} rows)")
    page = _child("--strategy-csv", strategy.name)
    print(
        f"strategy page CSV, {n:,} trades, under ASGI: response {page['answered'] * 1000:.0f} ms, "
        f"first chunk {page['first'] * 1000:.0f} ms, last {page['s']:.1f} s "
        f"({page['size'] / 1e6:.1f} MB), peak RSS {page['peak_mb']:.0f} MB "
        f"(+{page['peak_mb'] - page['base_mb']:.0f} MB over {page['base_mb']:.0f} MB)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--job"]:
        job(int(sys.argv[2]))
    elif sys.argv[1:2] == ["--strategy-csv"]:
        strategy_csv(sys.argv[2])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
