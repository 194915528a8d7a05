"""Quantsite side by side with bt, vectorbt and a plain numpy loop on the issue-12
workload (``bench.workload``; ``make bench-peers``, in ``.venv-bench`` where bt and
vectorbt are installed: they are benchmark-only and never imported by Quantsite).

``python bench/peers.py [--scale]`` times, on 10 strategies x 5,001 bars x 20 tickers:

(a) ``manage.py backtest`` end to end in a subprocess on a throwaway SQLite (migrated
    first, untimed): wall, CPU and peak RSS of that process (``os.wait4``);
(b) the engine only, no database. The update path has no in-memory entry point
    (``operations.update.portfolio_apply`` loads the state from the ORM every chunk and
    opens a risk session), so this times its two engine calls on a state built in memory:
    ``portfolio.services.books.spec_targets`` per strategy and
    ``portfolio.engine.cycle.apply_dates`` over every date, without a risk hook;
(c) bt, one parent (monthly equal weights) with the 10 strategies as children;
(d) bt, 10 independent backtests, nothing persisted (construction and ``run``; bt's
    statistics are not computed);
(e) vectorbt ``Portfolio.from_orders`` with 10 cash-sharing groups of 20 columns, warm
    (the second call is timed, the first compiles);
(f) the numpy loop (``bench.reference``), which is also the correctness reference.

bt and vectorbt trade at the close of the first bar of each month toward the targets
decided at the previous close, the same momentum the reference computes, costs off,
fractional quantities. Final-equity agreement with the reference is reported for the
peers that model the same portfolio: (c), and vectorbt as one cash-sharing group holding
the books' average targets (which is what a monthly rebalance to equal static weights
on the books' rebalance day amounts to). (d) and (e) are 10 separate books that never
rebalance between themselves, so their equity is not the reference's.

``--profile`` adds a cProfile of (a): the Quantsite functions that take its time.
``--scale`` adds the 100 x 100 x 5,001 workload: Quantsite end to end (CPU, peak RSS) and
bt, 100 independent backtests, in a child process (CPU, peak RSS). Slow.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QUANTSITE_DATA_DIR", tempfile.mkdtemp(prefix="quantsite-peers-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantsite.settings")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.reference import momentum_targets, workload_equity  # noqa: E402
from bench.workload import (  # noqa: E402
    INITIAL_CAPITAL,
    TOP_N,
    Workload,
    lookbacks,
    workload_write,
)

# Runs a Python script as __main__ and, at exit, writes the process's own peak RSS
# (VmHWM) to the file named by $QS_BENCH_HWM. ru_maxrss cannot be used: Linux carries the
# parent's high-water mark across fork and execve, so a child of this (large) process
# would report at least this process's size.
_HWM_PRELUDE = """
import atexit, os, runpy, sys
def _hwm():
    status = open("/proc/self/status").read()
    kib = status.split("VmHWM:")[1].split()[0]
    open(os.environ["QS_BENCH_HWM"], "w").write(kib)
atexit.register(_hwm)
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def child_usage(script: list[str], env: dict) -> dict:
    """Run the Python ``script`` (path and arguments) in a child: its wall time, CPU (user
    + system, ``os.wait4``) and peak RSS (its own VmHWM)."""
    with tempfile.NamedTemporaryFile(prefix="qs-hwm-") as hwm:
        env = {**env, "QS_BENCH_HWM": hwm.name}
        cmd = [sys.executable, "-c", _HWM_PRELUDE, *script]
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(script)} exited {os.waitstatus_to_exitcode(status)}")
        peak_kib = int(Path(hwm.name).read_text() or 0)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": peak_kib / 1024,
        "stdout": out,
    }


def quantsite_backtest(w: Workload, folder: Path) -> dict:
    """(a): ``manage.py backtest`` on a fresh SQLite in ``folder``."""
    config_path, data_path, closes = workload_write(w, folder)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["QUANTSITE_DATA_DIR"] = str(folder / "data")
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True)
    summary = folder / "summary.json"
    cmd = [
        str(ROOT / "manage.py"),
        "backtest",
        "--config",
        str(config_path),
        "--data",
        str(data_path),
    ]
    cmd += ["--add-tickers", ",".join(closes.columns), "--json", str(summary)]
    usage = child_usage(cmd, env)
    import json

    final = json.loads(summary.read_text())["portfolio"]["final_equity"]
    return {k: v for k, v in usage.items() if k != "stdout"} | {"final_equity": final}


def backtest_profile(w: Workload, folder: Path, top: int = 12) -> list[dict]:
    """``manage.py backtest`` of ``w`` under cProfile: the ``top`` Quantsite functions by
    cumulative time (what explains a missed target), with their own (total) time; module
    imports left out."""
    import pstats

    config_path, data_path, closes = workload_write(w, folder)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["QUANTSITE_DATA_DIR"] = str(folder / "data")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = folder / "backtest.prof"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "manage.py", "backtest"]
    cmd += ["--config", str(config_path), "--data", str(data_path)]
    cmd += ["--add-tickers", ",".join(closes.columns)]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    stats = pstats.Stats(str(out)).stats
    total = max(ct for _, _, _, ct, _ in stats.values())
    rows = []
    for (path, line, name), (_, calls, tt, ct, _) in stats.items():
        rel = Path(path).resolve() if path.startswith("/") else Path("/")
        if ROOT in rel.parents and ".venv" not in path and name != "<module>":
            where = f"{rel.relative_to(ROOT)}:{line} {name}"
            rows.append({"function": where, "calls": calls, "cum_s": ct, "own_s": tt})
    rows.sort(key=lambda r: -r["cum_s"])
    return [{**r, "cum_share": r["cum_s"] / total} for r in rows[:top]]


def engine_only(w: Workload, config_path: Path, closes: pd.DataFrame) -> dict:
    """(b): the update path's engine calls on a state built in memory (module docstring)."""
    import django

    django.setup()
    from portfolio.engine.book import Book
    from portfolio.engine.cycle import PortfolioState, StrategyState, apply_dates
    from portfolio.services.books import TargetsSpec, spec_targets
    from portfolio.services.config import allocation_spec_read

    spec = allocation_spec_read(config_path)
    tickers = sorted(closes.columns)
    frame = closes[tickers]
    t = time.perf_counter()
    cpu = time.process_time()
    targets = {
        s.name: spec_targets(
            TargetsSpec(s.name, s.signal_type, s.parameters, s.risk_config), frame, tickers
        )
        for s in spec.strategies
    }
    books = [
        StrategyState(
            name=s.name,
            allocation=s.allocation,
            static_allocation=s.allocation,
            active=True,
            frequency=s.signal.frequency,
            execution=spec.execution_for(s),
            book=Book(),
        )
        for s in spec.strategies
    ]
    state = PortfolioState(
        initial_capital=spec.initial_capital,
        leverage_target=spec.leverage_target,
        strategies=books,
        rebalance_trigger=spec.rebalance_trigger,
        rebalance_frequency=spec.rebalance_frequency,
        allocation=spec.allocation,
        rebalance_execution=spec.rebalance_execution,
        rebalance_trading_day=spec.rebalance_trading_day,
    )
    results = apply_dates(state, frame, targets, list(frame.index.date))
    return {
        "wall_s": time.perf_counter() - t,
        "cpu_s": time.process_time() - cpu,
        "final_equity": results[-1].portfolio.equity,
    }


def book_weights(closes: pd.DataFrame, n_strategies: int) -> list[pd.DataFrame]:
    """Each book's targets as filled: row t holds the decision of close t-1 (row 0: none)."""
    values = closes.to_numpy(dtype=float)
    out = []
    for lb in lookbacks(n_strategies):
        w = np.vstack([np.zeros((1, values.shape[1])), momentum_targets(values, lb, TOP_N)[:-1]])
        out.append(pd.DataFrame(w, index=closes.index, columns=closes.columns))
    return out


def _bt_strategy(bt, name: str, weights: pd.DataFrame):
    return bt.Strategy(
        name, [bt.algos.RunMonthly(), bt.algos.WeighTarget(weights), bt.algos.Rebalance()]
    )


def bt_parent(closes: pd.DataFrame, n_strategies: int) -> dict:
    """(c): one bt parent rebalancing monthly to equal weights, the books as children."""
    import bt

    t, cpu = time.perf_counter(), time.process_time()
    weights = book_weights(closes, n_strategies)
    children = [_bt_strategy(bt, f"s{i}", w) for i, w in enumerate(weights)]
    parent = bt.Strategy(
        "parent",
        [
            bt.algos.RunMonthly(),
            bt.algos.SelectAll(),
            bt.algos.WeighEqually(),
            bt.algos.Rebalance(),
        ],
        children=children,
    )
    test = bt.Backtest(parent, closes, initial_capital=INITIAL_CAPITAL, integer_positions=False)
    test.run()
    return {
        "wall_s": time.perf_counter() - t,
        "cpu_s": time.process_time() - cpu,
        "final_equity": float(test.strategy.values.iloc[-1]),
    }


def bt_independent(closes: pd.DataFrame, n_strategies: int) -> dict:
    """(d): ``n_strategies`` separate bt backtests, each with an equal share of capital."""
    import bt

    t, cpu = time.perf_counter(), time.process_time()
    capital = INITIAL_CAPITAL / n_strategies
    final = 0.0
    for i, w in enumerate(book_weights(closes, n_strategies)):
        test = bt.Backtest(
            _bt_strategy(bt, f"s{i}", w), closes, initial_capital=capital, integer_positions=False
        )
        test.run()
        final += float(test.strategy.values.iloc[-1])
    return {
        "wall_s": time.perf_counter() - t,
        "cpu_s": time.process_time() - cpu,
        "final_equity": final,
    }


def _vbt_run(vbt, closes: pd.DataFrame, weights: list[pd.DataFrame], capital: float):
    months = closes.index.year * 12 + closes.index.month
    trade = np.r_[False, months[1:] != months[:-1]]
    n = len(weights)
    close = pd.concat([closes] * n, axis=1, keys=range(n), names=["book", "ticker"])
    size = pd.concat(weights, axis=1, keys=range(n), names=["book", "ticker"])
    size[~trade] = np.nan
    return vbt.Portfolio.from_orders(
        close,
        size,
        size_type="targetpercent",
        group_by="book",
        cash_sharing=True,
        call_seq="auto",
        init_cash=capital,
        fees=0.0,
        freq="1D",
    )


def vbt_groups(closes: pd.DataFrame, n_strategies: int) -> dict:
    """(e): 10 cash-sharing groups, warm; plus the one-group run the reference matches."""
    import vectorbt as vbt

    weights = book_weights(closes, n_strategies)
    capital = INITIAL_CAPITAL / n_strategies
    _vbt_run(vbt, closes, weights, capital)  # compiles
    t, cpu = time.perf_counter(), time.process_time()
    pf = _vbt_run(vbt, closes, weights, capital)
    figures = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - cpu}
    figures["final_equity"] = float(pf.value().iloc[-1].sum())
    combined = sum(weights[1:], weights[0]) / n_strategies
    one = _vbt_run(vbt, closes, [combined], INITIAL_CAPITAL)
    figures["one_group_final_equity"] = float(one.value().iloc[-1].sum())
    return figures


def numpy_loop(closes: pd.DataFrame, n_strategies: int, repeat: int = 5) -> dict:
    """(f): the reference, best of ``repeat`` (it is the floor: no noise in it matters)."""
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        equity = workload_equity(closes, lookbacks(n_strategies), TOP_N, INITIAL_CAPITAL)
        best = min(best, time.perf_counter() - t)
    return {"wall_s": best, "final_equity": float(equity[-1])}


def rel_diff(x: float | None, reference: float) -> float | None:
    return None if x is None else abs(x / reference - 1.0)


def peers_run(w: Workload, folder: Path) -> dict:
    """Every figure (a)-(f) on ``w``, the ratios and the agreement with the reference."""
    config_path, _, closes = workload_write(w, folder / "workload")
    closes = closes[sorted(closes.columns)]
    fig: dict[str, dict] = {}
    steps = [
        ("numpy", lambda: numpy_loop(closes, w.n_strategies)),
        ("engine", lambda: engine_only(w, config_path, closes)),
        ("bt_parent", lambda: bt_parent(closes, w.n_strategies)),
        ("bt_independent", lambda: bt_independent(closes, w.n_strategies)),
        ("vectorbt", lambda: vbt_groups(closes, w.n_strategies)),
        ("quantsite", lambda: quantsite_backtest(w, folder / "backtest")),
    ]
    for key, step in steps:
        fig[key] = step()
        print(f"peers: {key:<15} " + ", ".join(f"{k} {v:,.4g}" for k, v in fig[key].items()))
    ref = fig["numpy"]["final_equity"]
    agreement = {k: rel_diff(fig[k].get("final_equity"), ref) for k in fig if k != "numpy"}
    agreement["vectorbt_one_group"] = rel_diff(fig["vectorbt"]["one_group_final_equity"], ref)
    ratios = {
        "quantsite_over_bt_independent": fig["quantsite"]["wall_s"]
        / fig["bt_independent"]["wall_s"],
        "quantsite_over_bt_parent": fig["quantsite"]["wall_s"] / fig["bt_parent"]["wall_s"],
        "engine_over_vectorbt_warm": fig["engine"]["wall_s"] / fig["vectorbt"]["wall_s"],
        "engine_over_numpy": fig["engine"]["wall_s"] / fig["numpy"]["wall_s"],
    }
    print("peers: ratios " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print("peers: |final / numpy - 1| " + ", ".join(f"{k} {v:.2e}" for k, v in agreement.items()))
    return {"workload": w.__dict__, "figures": fig, "ratios": ratios, "agreement": agreement}


def scale_run(w: Workload, folder: Path, small: dict | None) -> dict:
    """The scale workload: Quantsite end to end and bt's independent backtests, each in
    a child process (CPU, peak RSS)."""
    quantsite = quantsite_backtest(w, folder / "scale-backtest")
    print(f"scale: quantsite {quantsite}")
    args = [str(x) for x in (w.n_bars, w.n_tickers, w.n_strategies, w.seed)]
    cmd = [str(Path(__file__).resolve()), "_bt-independent", *args]
    bt = child_usage(cmd, dict(os.environ))
    bt.pop("stdout")
    print(f"scale: bt independent {bt}")
    out = {"workload": w.__dict__, "quantsite": quantsite, "bt_independent": bt}
    out["cpu_ratio_quantsite_over_bt"] = quantsite["cpu_s"] / bt["cpu_s"]
    if small is not None:
        per10 = small["figures"]["quantsite"]["cpu_s"] / small["workload"]["n_strategies"]
        out["cpu_per_strategy_100_over_10"] = quantsite["cpu_s"] / w.n_strategies / per10
    return out


def main(argv: list[str]) -> None:
    from bench.report import section_read, section_write

    if argv[:1] == ["_bt-independent"]:
        n_bars, n_tickers, n_strategies, seed = (int(x) for x in argv[1:5])
        w = Workload(n_bars=n_bars, n_tickers=n_tickers, n_strategies=n_strategies, seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            _, _, closes = workload_write(w, tmp)
        print(bt_independent(closes[sorted(closes.columns)], n_strategies))
        return
    with tempfile.TemporaryDirectory(prefix="quantsite-peers-") as tmp:
        small = peers_run(Workload(), Path(tmp))
        if "--profile" in argv:
            small["profile"] = backtest_profile(Workload(), Path(tmp) / "profile")
            print(
                "peers: profile "
                + "; ".join(f"{r['function']} {r['cum_s']:.1f} s" for r in small["profile"])
            )
        section_write("peers", small)
        if "--scale" in argv:
            section_write("scale", scale_run(Workload.scale(), Path(tmp), small))
        elif section_read("scale") is None:
            print("scale: not measured (python bench/peers.py --scale)")


if __name__ == "__main__":
    main(sys.argv[1:])
