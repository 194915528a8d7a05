"""Speed figures (``make bench``). Not a test: it prints timings, and asserts nothing about
them. Runs on a throwaway SQLite database (or DATABASE_URL when set).

Figures:
  * loading + validating the bundled prices (21 tickers x 8,313 bars);
  * a full replay of the demo portfolio (5 strategies, 1990-2022) through run_update's path,
    split into signal/sizing, engine and database-write time;
  * one incremental single-bar update after that (what the scheduler does every minute).
"""

from __future__ import annotations

import os
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


def main() -> None:
    from portfolio.feeds import BundledProvider
    from portfolio.models import PortfolioSnapshot, PriceBar, Trade
    from portfolio.services.config import allocation_spec_read, portfolio_configure
    from portfolio.services.prices import prices_load
    from portfolio.services.update import run_update

    call_command("migrate", verbosity=0)
    dates = BundledProvider().closes_frame().index
    t = time.perf_counter()
    prices_load(provider=BundledProvider(), strict=True, until=dates[-2].date())
    load_s = time.perf_counter() - t
    spec = allocation_spec_read(ROOT / "config" / "strategy_allocation.yaml")
    portfolio_configure(spec=spec, source="bench")
    t = time.perf_counter()
    result = run_update(load_prices=False, trigger="bench")
    replay_s = time.perf_counter() - t
    from portfolio.models import UpdateRun

    run = UpdateRun.objects.get(pk=result.run_id)
    t = time.perf_counter()
    step = run_update(trigger="bench")  # loads the one remaining bundled bar and applies it
    step_s = time.perf_counter() - t
    print(f"prices: load+validate {PriceBar.objects.count():,} bars   {load_s:8.2f} s")
    print(f"replay: {result.dates_applied:,} dates x 5 strategies      {replay_s:8.2f} s")
    print(
        f"        signals+engine {run.seconds_engine:.2f} s, writes {run.seconds_write:.2f} s; "
        f"{PortfolioSnapshot.objects.count():,} portfolio snapshots, "
        f"{Trade.objects.count():,} trades"
    )
    print(f"update: one new bar ({step.dates_applied} date)            {step_s:8.2f} s")


if __name__ == "__main__":
    main()
