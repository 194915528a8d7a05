"""Speed figures (``make bench``). Not a test: it prints timings, and asserts nothing about
them. Runs on a throwaway SQLite database (or DATABASE_URL when set).

Figures:
  * loading + validating the bundled prices (21 tickers x 8,313 bars);
  * a full replay of the demo portfolio (5 strategies, 1990-2022) through run_update's path,
    split into signal/sizing, engine and database-write time;
  * one incremental single-bar update after that (what the scheduler does every minute);
  * each allocation method's weights for 10 and 100 strategies over 5,000 days (synthetic
    correlated returns; the median of repeated calls);
  * a full replay of the demo portfolio with risk-parity allocation and proportional
    rebalancing (what a dynamic method adds to the replay).

``python bench/run.py pages [--repeat N] [--profile] [--out DIR]`` instead times every
dashboard page on the demo (``bench/pages.py``), and ``python bench/run.py load
[--clients N] [--requests N]`` the pages under concurrent clients on a real daphne
(``bench/load.py``); ``make bench`` runs all three.

``python bench/run.py fanout [STRATEGIES TICKERS BARS]`` (default 100 100 5001) instead
times the part of an update the scale-out fans out (every strategy's signal and sizing,
``operations.fanout``) on synthetic prices: in process, then over a real ``manage.py
qcluster`` with 2 workers (ORM broker on the bench's SQLite file), and checks that both
give the same targets bit for bit.
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
    from operations.config import portfolio_configure
    from operations.update import run_update
    from portfolio.feeds import BundledProvider
    from portfolio.models import PortfolioSnapshot, PriceBar, Trade
    from portfolio.services.config import allocation_spec_read
    from portfolio.services.prices import prices_load
    from reporting.pages.warm import live_pages_warm

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
    # loads the one remaining bundled bar and applies it; the pages' warm-up timed apart
    step = run_update(trigger="bench", warm_pages=False)
    step_s = time.perf_counter() - t
    t = time.perf_counter()
    live_pages_warm()
    warm_s = time.perf_counter() - t
    print(f"prices: load+validate {PriceBar.objects.count():,} bars   {load_s:8.2f} s")
    print(f"replay: {result.dates_applied:,} dates x 5 strategies      {replay_s:8.2f} s")
    print(
        f"        signals+engine {run.seconds_engine:.2f} s, writes {run.seconds_write:.2f} s; "
        f"{PortfolioSnapshot.objects.count():,} portfolio snapshots, "
        f"{Trade.objects.count():,} trades"
    )
    print(f"update: one new bar ({step.dates_applied} date)            {step_s:8.2f} s")
    print(f"        then every page's cached part built (pages warm-up) {warm_s:.2f} s")
    from bench.report import section_write

    figures = {"prices_load_s": load_s, "replay_s": replay_s, "update_s": step_s}
    figures |= {"warm_s": warm_s, "dates_replayed": result.dates_applied}
    figures["strategies"] = len(spec.strategies)
    section_write("update", figures)
    allocation_bench()
    dynamic_replay_bench(spec)
    risk_replay_bench(spec)


def risk_replay_bench(spec) -> None:
    from operations.config import portfolio_configure
    from operations.update import portfolio_apply
    from portfolio.selectors import price_frame
    from risk.models import Violation
    from risk.services import risk_spec_read

    risk = risk_spec_read(ROOT / "config" / "risk_limits.yaml")
    portfolio = portfolio_configure(spec=spec, risk=risk, source="bench", name="bench risk")
    closes = price_frame()
    t = time.perf_counter()
    result = portfolio_apply(portfolio=portfolio, closes=closes)
    total = time.perf_counter() - t
    n = Violation.objects.filter(portfolio=portfolio).count()
    print(
        f"replay: demo + risk_limits.yaml,   {result.dates_applied:,} dates {total:8.2f} s "
        f"(engine+risk {result.seconds_engine:.2f} s, writes {result.seconds_write:.2f} s; "
        f"{n} violations)"
    )


def allocation_bench() -> None:
    import numpy as np

    from portfolio.engine.allocation import AllocationParams, allocation_targets

    rng = np.random.default_rng(0)
    params = {
        "inverse_volatility": {},
        "risk_parity": {},
        "performance": {"min_weight": 0.0, "max_weight": 0.5},
        "kelly": {"fraction": 0.5},
        "hierarchical_risk_budget": {"vol_target": 0.1},
    }
    for n in (10, 100):
        factor = rng.normal(0, 0.008, size=(5000, 1))
        returns = 0.0003 + factor * rng.uniform(0.2, 1.0, n) + rng.normal(0, 0.01, (5000, n))
        names = [f"s{i}" for i in range(n)]
        flat = {x: 1.0 / n for x in names}
        for method, extra in params.items():
            p = AllocationParams(method=method, lookback=5000, min_history=2, **extra)
            times = []
            for _ in range(5 if n == 100 else 20):
                t = time.perf_counter()
                allocation_targets(
                    p,
                    names=names,
                    static=flat,
                    current=flat,
                    active={x: True for x in names},
                    history_days={x: 5000 for x in names},
                    returns=returns,
                    leverage_target=1.0,
                )
                times.append(time.perf_counter() - t)
            print(
                f"allocation: {method:<25} {n:>3} strategies x 5,000 days "
                f"{1000 * sorted(times)[len(times) // 2]:8.2f} ms"
            )


def dynamic_replay_bench(spec) -> None:
    from dataclasses import replace

    from operations.config import portfolio_configure
    from operations.update import portfolio_apply
    from portfolio.engine.allocation import AllocationParams
    from portfolio.models import RebalanceEvent
    from portfolio.selectors import price_frame

    dynamic = replace(
        spec,
        allocation_method="risk_parity",
        allocation_params={"lookback": 126},
        allocation=AllocationParams(method="risk_parity", lookback=126, min_history=126),
        rebalance_execution="proportional",
    )
    portfolio = portfolio_configure(spec=dynamic, source="bench", name="bench risk parity")
    closes = price_frame()
    t = time.perf_counter()
    result = portfolio_apply(portfolio=portfolio, closes=closes)
    total = time.perf_counter() - t
    events = RebalanceEvent.objects.filter(portfolio=portfolio).count()
    print(
        f"replay: risk parity + proportional, {result.dates_applied:,} dates {total:8.2f} s "
        f"(engine {result.seconds_engine:.2f} s, writes {result.seconds_write:.2f} s; "
        f"{events} rebalances)"
    )


def fanout_bench(n_strategies: int = 100, n_tickers: int = 100, n_bars: int = 5001) -> None:
    import numpy as np
    import pandas as pd
    from django.conf import settings

    from bench.memory import cluster_start
    from operations.fanout import strategies_targets
    from portfolio.models import Strategy

    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(1)
    index = pd.bdate_range("2000-01-03", periods=n_bars)
    tickers = [f"T{i:03d}" for i in range(n_tickers)]
    returns = rng.normal(0.0003, 0.015, (n_bars, n_tickers))
    closes = pd.DataFrame(100 * np.exp(np.cumsum(returns, axis=0)), index=index, columns=tickers)
    kinds = [
        ("MomentumSignalV2", lambda i: {"lookback": 20 + 5 * (i % 40), "sma_filter": 200}),
        ("MeanReversionSignal", lambda i: {"window": 10 + i % 30, "entry_z": 2.0, "exit_z": 0.5}),
        ("TrendFollowingSignal", lambda i: {"window": 20 + i % 60}),
    ]
    risk = {"max_position_size": 0.2, "max_leverage": 1.0, "volatility_target": 0.2}
    strategies = [
        Strategy(name=f"s{i:03d}", signal_type=kind, parameters=params(i), risk_config=risk)
        for i, (kind, params) in ((i, kinds[i % len(kinds)]) for i in range(n_strategies))
    ]
    settings.QUANTSITE_FANOUT = "off"
    t = time.perf_counter()
    plain = strategies_targets(strategies, closes, tickers)
    plain_s = time.perf_counter() - t
    env = {**os.environ, "QUANTSITE_Q_WORKERS": "2"}
    cluster = cluster_start(env)
    try:
        settings.QUANTSITE_FANOUT, settings.QUANTSITE_FANOUT_MIN_STRATEGIES = "2", 2
        for _ in range(2):  # warm up: the cluster's workers started and imported everything
            strategies_targets(strategies[:2], closes.iloc[:300], tickers)
        t = time.perf_counter()
        spread = strategies_targets(strategies, closes, tickers)
        spread_s = time.perf_counter() - t
    finally:
        cluster.terminate()
        cluster.wait(timeout=30)
    same = list(plain) == list(spread) and all(
        plain[k].equals(spread[k])
        and np.array_equal(plain[k].to_numpy(), spread[k].to_numpy(), equal_nan=True)
        for k in plain
    )
    print(
        f"fan-out: targets of {n_strategies} strategies x {n_tickers} tickers x {n_bars:,} bars: "
        f"in process {plain_s:.2f} s, 2 workers {spread_s:.2f} s "
        f"(speed-up {plain_s / spread_s:.2f}x; identical: {same})"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["fanout"]:
        fanout_bench(*(int(x) for x in sys.argv[2:5]))
    elif sys.argv[1:2] == ["load"]:
        import argparse

        from bench.load import load_bench

        parser = argparse.ArgumentParser(prog="bench/run.py load")
        parser.add_argument("--clients", type=int, default=50)
        parser.add_argument("--requests", type=int, default=4)
        parser.add_argument("--out")
        load_bench(**vars(parser.parse_args(sys.argv[2:])))
    elif sys.argv[1:2] == ["pages"]:
        import argparse

        from bench.pages import pages_bench

        parser = argparse.ArgumentParser(prog="bench/run.py pages")
        parser.add_argument("--repeat", type=int, default=5)
        parser.add_argument("--profile", action="store_true")
        parser.add_argument("--out")
        pages_bench(**vars(parser.parse_args(sys.argv[2:])))
    else:
        main()
