"""Monte Carlo cost (``python bench/montecarlo.py``, part of ``make bench``). Not a test: it
prints figures and asserts nothing about them.

Issue 13's figure: ``risk.engine.montecarlo.simulate`` for 10,000 paths x 252 days x 10
strategies, from 5,000 rows of synthetic correlated daily returns (seeded), mean block 5,
a -15 % drawdown limit, on one core: BLAS/OpenMP threads are set to 1 before numpy is
imported and the process is pinned to one CPU where the OS allows. Best of 3 wall seconds
(with the CPU seconds of that run), for the full call (with the per-strategy quantiles, as
``manage.py montecarlo`` calls it) and for the portfolio alone (``per_strategy=False``);
peak RSS is the process's ``VmHWM`` (inputs, numpy and the simulation together). Target:
under 2 s.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.report import section_write  # noqa: E402
from risk.engine.montecarlo import simulate  # noqa: E402

PATHS, HORIZON, STRATEGIES, ROWS, REPEAT = 10_000, 252, 10, 5_000, 3
TARGET_S = 2.0


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _best(kwargs: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of REPEAT calls."""
    runs = []
    for _ in range(REPEAT):
        wall, cpu = time.perf_counter(), time.process_time()
        simulate(**kwargs)
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def main() -> None:
    pinned = False
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        pinned = True
    rng = np.random.default_rng(13)
    factor = rng.normal(0, 0.008, size=(ROWS, 1))
    loadings = rng.uniform(0.2, 1.0, STRATEGIES)
    returns = 0.0003 + factor * loadings + rng.normal(0, 0.01, (ROWS, STRATEGIES))
    kwargs = {
        "returns": returns,
        "weights": np.full(STRATEGIES, 0.09),
        "value0": 1_000_000.0,
        "paths": PATHS,
        "horizon": HORIZON,
        "mean_block": 5,
        "seed": 1,
        "drawdown_limit": -0.15,
    }
    wall, cpu = _best(kwargs)
    wall_p, cpu_p = _best(kwargs | {"per_strategy": False})
    result = simulate(**kwargs)
    figures = {
        "paths": PATHS,
        "horizon": HORIZON,
        "strategies": STRATEGIES,
        "rows": ROWS,
        "repeat": REPEAT,
        "pinned_one_cpu": pinned,
        "wall_s": wall,
        "cpu_s": cpu,
        "portfolio_only_wall_s": wall_p,
        "portfolio_only_cpu_s": cpu_p,
        "peak_rss_mib": _peak_rss_mib(),
        "p_breach_drawdown": result.p_breach_drawdown,
        "target_s": TARGET_S,
        "met": wall < TARGET_S,
    }
    print(
        f"montecarlo: {PATHS:,} paths x {HORIZON} days x {STRATEGIES} strategies, one core, "
        f"best of {REPEAT}: {wall:.3f} s wall, {cpu:.3f} s CPU "
        f"(portfolio only {wall_p:.3f} s); peak RSS {figures['peak_rss_mib']:,.0f} MiB"
    )
    section_write("montecarlo", figures)


if __name__ == "__main__":
    main()
