"""Export timings (``python bench/exports.py [TRADES]``, default 100,000). Not a test: it
prints timings and asserts nothing about them. Throwaway SQLite database (or
DATABASE_URL when set).

Figures, for a portfolio holding TRADES fills:
  * the request ``GET /export/trades.xlsx``: how long until it answers (a 303 to the job's
    page above ``QUANTSITE_EXPORT_DIRECT_ROWS`` rows; the acceptance is under 1 s);
  * a poll of the job's page while it is queued;
  * the background job itself (``reporting.tasks.write_export``): reading the trades
    through the selectors, then writing the workbook with openpyxl's write-only mode,
    with the largest resident memory seen;
  * the same for CSV.
"""

from __future__ import annotations

import os
import resource
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
    from reporting import selectors, tasks
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
    for fmt in ("xlsx", "csv"):
        t = time.perf_counter()
        response = client.get(f"/export/trades.{fmt}")
        request_s = time.perf_counter() - t
        t = time.perf_counter()
        client.get(response["Location"])
        poll_s = time.perf_counter() - t
        job = ExportJob.objects.get(fmt=fmt)
        t = time.perf_counter()
        selectors.trade_frame(portfolio=portfolio, detail=True)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        tasks.write_export(job.pk)
        job_s = time.perf_counter() - t
        job.refresh_from_db()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{fmt}: {n:,} trades: request {request_s * 1000:.0f} ms "
            f"(HTTP {response.status_code}), job page {poll_s * 1000:.0f} ms; "
            f"job {job_s:.1f} s ({job.status}, {job.rows_done:,} rows; of which the "
            f"selector read {read_s:.1f} s), max RSS {rss_mb:.0f} MB"
        )
    print(f"(direct below {settings.QUANTSITE_EXPORT_DIRECT_ROWS:,} rows)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
