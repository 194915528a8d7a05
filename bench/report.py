"""``bench/results.json`` and ``bench/RESULTS.md``: every bench section's figures, merged.

Each section (``update`` from ``bench/run.py``, ``pages``, ``load``, ``peers`` and
``scale`` from ``bench/peers.py``, ``montecarlo`` from ``bench/montecarlo.py``) replaces
only its own entry in ``results.json``, stamped with when it ran and at which git commit;
the machine (CPU model, cores, RAM, Python) is the one of the latest write. ``RESULTS.md``
is rendered from the whole file after every write: one table per row of issue 12's
performance table (measure | Quantsite | peer, same run | target | met?); a figure no
section has recorded reads "not measured".
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "bench" / "results.json"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
NOT = "not measured"
HEADER = "| measure | Quantsite | peer, same run | target | met? |\n|---|---|---|---|:---:|"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def machine() -> dict:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "note": os.environ.get(
            "QUANTSITE_BENCH_NOTE", "shared machine: other work may have run at the same time"
        ),
    }


def results_read(path: Path = RESULTS_JSON) -> dict:
    if not path.exists():
        return {"machine": None, "sections": {}}
    return json.loads(path.read_text())


def section_read(name: str, path: Path = RESULTS_JSON) -> dict | None:
    entry = results_read(path)["sections"].get(name)
    return None if entry is None else entry["figures"]


def section_write(
    name: str, figures: dict, path: Path = RESULTS_JSON, md_path: Path | None = None
) -> None:
    """Replace section ``name`` in ``path`` (others kept) and render the Markdown beside."""
    results = results_read(path)
    results["machine"] = machine()
    results["sections"][name] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "figures": figures,
    }
    results["sections"] = dict(sorted(results["sections"].items()))
    path.write_text(json.dumps(results, indent=1, default=float) + "\n")
    md = md_path or (RESULTS_MD if path == RESULTS_JSON else path.with_suffix(".md"))
    md.write_text(render(results))
    print(f"bench: section {name!r} written to {path} and {md}")


def _s(x: float | None, unit: str = "s") -> str:
    if x is None:
        return NOT
    if unit == "ms":
        return f"{x:,.0f} ms"
    return f"{x:,.3g} {unit}" if x < 100 else f"{x:,.0f} {unit}"


def _met(ok: bool | None) -> str:
    return NOT if ok is None else ("yes" if ok else "**no**")


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def render(results: dict) -> str:
    sections = results.get("sections", {})
    m = results.get("machine") or {}
    lines = ["# Benchmark results (issue 12)", ""]
    lines.append(
        "Written by `make bench` / `make bench-peers` (`bench/report.py` from "
        "`bench/results.json`). Machine: "
        f"{m.get('cpu', NOT)}, {m.get('cores', '?')} cores, {m.get('ram_gib', '?')} GiB RAM, "
        f"Python {m.get('python', '?')}; {m.get('note', '')}."
    )
    lines.append("")
    for name, entry in sections.items():
        lines.append(f"- `{name}`: {entry['measured_at']} at commit {entry['git_commit']}")
    for title, table in (
        ("Pages under 50 concurrent logged-in clients", _load_pages(sections)),
        ("API lists at 50 concurrency", _load_api(sections)),
        ("One `run_update`, one new bar", _update(sections)),
        ("`manage.py backtest`, 10 strategies x 5,001 bars x 20 tickers", _backtest(sections)),
        ("Engine only, same workload", _engine(sections)),
        ("100 strategies x 100 tickers x 5,001 bars end to end", _scale(sections)),
        ("One push to 50 websocket clients", _push(sections)),
        ("Worker memory over 200 update cycles", _memory(sections)),
        ("Monte Carlo, 10,000 paths x 252 days x 10 strategies (issue 13)", _montecarlo(sections)),
        ("Single page server times (bench/pages.py)", _pages(sections)),
    ):
        lines += ["", f"## {title}", "", table]
    return "\n".join(lines) + "\n"


def _fig(sections: dict, name: str) -> dict | None:
    entry = sections.get(name)
    return None if entry is None else entry["figures"]


def _load_pages(sections: dict) -> str:
    load = _fig(sections, "load")
    lines = [HEADER]
    target = "p99 < 500 ms; p50 <= 5x `/status.json`"
    if load is None:
        return "\n".join([*lines, _row("overview `/` and the other pages", NOT, NOT, target, NOT)])
    rows = {r["path"]: r for r in load["rows"]}
    trivial = rows.get("/status.json")
    peer = (
        f"`/status.json`: {trivial['pages_per_s']:,.0f} req/s, p50 {trivial['p50_ms']:,.0f} "
        f"ms, p99 {trivial['p99_ms']:,.0f} ms"
        if trivial
        else NOT
    )
    for path, r in rows.items():
        if path == "/status.json" or path.startswith("/api/"):
            continue
        ratio = r["p50_ms"] / trivial["p50_ms"] if trivial else None
        ok = r["errors"] == 0 and r["p99_ms"] < 500 and ratio is not None and ratio <= 5
        got = (
            f"{r['pages_per_s']:,.1f} pages/s, p50 {r['p50_ms']:,.0f} ms, p99 "
            f"{r['p99_ms']:,.0f} ms, {r['kilobytes']:,.0f} KB, {r['errors']} errors"
        )
        lines.append(_row(f"`{path}`", got, peer, target, _met(ok)))
    return "\n".join(lines)


def _load_api(sections: dict) -> str:
    load = _fig(sections, "load")
    lines = [HEADER]
    target = "p99 < 200 ms"
    if load is None:
        return "\n".join([*lines, _row("API lists", NOT, "", target, NOT)])
    for r in load["rows"]:
        if r["path"].startswith("/api/"):
            got = f"p50 {r['p50_ms']:,.0f} ms, p99 {r['p99_ms']:,.0f} ms, {r['errors']} errors"
            ok = r["errors"] == 0 and r["p99_ms"] < 200
            lines.append(_row(f"`{r['path']}`", got, "", target, _met(ok)))
    q = "query count equal for 10 and 1,000 rows"
    lines.append(_row(q, "pinned by the API tests, not by the bench", "", "equal", NOT))
    return "\n".join(lines)


def _update(sections: dict) -> str:
    u = _fig(sections, "update")
    target = "< 100 ms; at 5,000 bars <= 1.2x the time at 500"
    if u is None:
        return "\n".join([HEADER, _row("one new bar", NOT, "", target, NOT)])
    what = (
        f"one new bar, the demo's {u['strategies']} strategies after a replay of "
        f"{u['dates_replayed']:,} dates"
    )
    ok = u["update_s"] < 0.1
    rows = [
        _row(what, _s(u["update_s"]), "", target, _met(ok)),
        _row("the pages' warm-up after it", _s(u["warm_s"]), "", "", ""),
        _row("the same at 500 and at 5,000 stored bars, 10 strategies", NOT, "", target, NOT),
    ]
    return "\n".join([HEADER, *rows])


def _backtest(sections: dict) -> str:
    p = _fig(sections, "peers")
    target = "<= 0.5x bt's 10 independent; final equity = numpy reference to 1e-12"
    if p is None:
        return "\n".join([HEADER, _row("wall, peak RSS", NOT, NOT, target, NOT)])
    f, r, a = p["figures"], p["ratios"], p["agreement"]
    q = f["quantsite"]
    got = f"{_s(q['wall_s'])} wall, {_s(q['cpu_s'])} CPU, {q['peak_rss_mib']:,.0f} MiB"
    peer = (
        f"bt, 10 independent, nothing persisted: {_s(f['bt_independent']['wall_s'])} "
        f"(ratio {r['quantsite_over_bt_independent']:.2f}); bt, one parent with the 10 as "
        f"children: {_s(f['bt_parent']['wall_s'])} (ratio {r['quantsite_over_bt_parent']:.2f})"
    )
    ok = r["quantsite_over_bt_independent"] <= 0.5 and a["quantsite"] <= 1e-12
    agree = (
        f"Quantsite {a['quantsite']:.1e}, engine {a['engine']:.1e}, bt parent "
        f"{a['bt_parent']:.1e}, vectorbt one group {a['vectorbt_one_group']:.1e}"
    )
    rows = [
        _row("wall, CPU, peak RSS (SQLite, all persisted)", got, peer, target, _met(ok)),
        _row(
            "final equity, relative to the numpy loop",
            agree,
            "",
            "<= 1e-12",
            _met(a["quantsite"] <= 1e-12),
        ),
    ]
    for r in p.get("profile") or []:
        rows.append(
            _row(
                f"profile: `{r['function']}`",
                f"{r['cum_s']:,.1f} s cumulative ({r['cum_share']:.0%}), {r['own_s']:,.1f} s own",
                "",
                "",
                "",
            )
        )
    return "\n".join([HEADER, *rows])


def _engine(sections: dict) -> str:
    p = _fig(sections, "peers")
    target = "<= 1.0x vectorbt warm; report the ratio to numpy"
    if p is None:
        return "\n".join([HEADER, _row("signals, sizing, daily cycle", NOT, NOT, target, NOT)])
    f, r = p["figures"], p["ratios"]
    peer = (
        f"vectorbt warm `from_orders`, 10 cash-sharing groups: {_s(f['vectorbt']['wall_s'])} "
        f"({r['engine_over_vectorbt_warm']:.1f}x); numpy loop: {_s(f['numpy']['wall_s'])} "
        f"({r['engine_over_numpy']:.0f}x)"
    )
    what = (
        "`spec_targets` + `apply_dates` on a state built in memory, no risk hook (the update "
        "path has no in-memory entry point)"
    )
    ok = r["engine_over_vectorbt_warm"] <= 1.0
    return "\n".join([HEADER, _row(what, _s(f["engine"]["wall_s"]), peer, target, _met(ok))])


def _scale(sections: dict) -> str:
    s = _fig(sections, "scale")
    target = "<= 0.5x bt's CPU; peak < 500 MiB; per-strategy cost flat from 10 to 100"
    if s is None:
        return "\n".join([HEADER, _row("CPU, peak RSS", NOT, NOT, target, NOT)])
    q, b = s["quantsite"], s["bt_independent"]
    got = f"{_s(q['cpu_s'])} CPU ({_s(q['wall_s'])} wall), {q['peak_rss_mib']:,.0f} MiB"
    peer = f"bt, 100 independent: {_s(b['cpu_s'])} CPU, {b['peak_rss_mib']:,.0f} MiB"
    per = s.get("cpu_per_strategy_100_over_10")
    ok = s["cpu_ratio_quantsite_over_bt"] <= 0.5 and q["peak_rss_mib"] < 500
    ok = ok and per is not None and per <= 1.2
    flat = NOT if per is None else f"CPU per strategy at 100 / at 10: {per:.2f}"
    rows = [
        _row(
            "CPU, peak RSS",
            got,
            peer + f" (ratio {s['cpu_ratio_quantsite_over_bt']:.2f})",
            target,
            _met(ok),
        ),
        _row("per-strategy cost", flat, "", "flat (taken here as <= 1.2)", ""),
    ]
    return "\n".join([HEADER, *rows])


def _push(sections: dict) -> str:
    """``bench/push.py``: one row per channel-layer configuration."""
    p = _fig(sections, "push")
    target = "p99 < 250 ms, exactly one message each"
    if p is None:
        return "\n".join([HEADER, _row("one push, 50 websockets", NOT, "", target, NOT)])
    rows = []
    for r in p["rows"]:
        once = r["delivered"] == r["expected"] and r["duplicates"] == 0
        rows.append(
            _row(
                f"{r['pushes']} pushes x {r['clients']} websockets, {r['layer']}",
                f"p50 {r['p50_ms']:,.0f} ms, p99 {r['p99_ms']:,.0f} ms, max "
                f"{r['max_ms']:,.0f} ms; {r['delivered']}/{r['expected']} delivered, "
                f"{r['duplicates']} duplicates",
                "",
                target,
                _met(once and r["p99_ms"] < 250),
            )
        )
    return "\n".join([HEADER, *rows])


def _montecarlo(sections: dict) -> str:
    """``bench/montecarlo.py``: one ``simulate`` call on one core, best of 3."""
    m = _fig(sections, "montecarlo")
    target = "< 2 s on one core"
    if m is None:
        return "\n".join([HEADER, _row("`simulate`", NOT, "", target, NOT)])
    what = (
        f"`simulate`, {m['paths']:,} paths x {m['horizon']} days x {m['strategies']} "
        f"strategies from {m['rows']:,} rows, one core, best of {m['repeat']}"
    )
    got = (
        f"{_s(m['wall_s'])} wall, {_s(m['cpu_s'])} CPU, {m['peak_rss_mib']:,.0f} MiB peak RSS; "
        f"{_s(m['portfolio_only_wall_s'])} without the per-strategy quantiles"
    )
    return "\n".join([HEADER, _row(what, got, "", target, _met(m["wall_s"] < m["target_s"]))])


def _memory(sections: dict) -> str:
    """``bench/memory.py``: the worker's RSS after the warm-up and at the last cycle."""
    m = _fig(sections, "memory")
    target = "RSS growth < 10% after warm-up"
    if m is None:
        return "\n".join([HEADER, _row("worker RSS", NOT, "", target, NOT)])
    what = (
        f"{m['cycles']} scheduled updates (one bar each, pages built) in a one-worker "
        f"qcluster, {m['cycle_seconds_median']:.1f} s a cycle"
    )
    got = (
        f"{m['rss_after_warmup_mib']:,.0f} MiB after {m['warmup']} -> "
        f"{m['rss_last_mib']:,.0f} MiB (max {m['rss_max_mib']:,.0f}): {m['growth']:+.1%}"
    )
    return "\n".join([HEADER, _row(what, got, "", target, _met(m["met"]))])


def _pages(sections: dict) -> str:
    p = _fig(sections, "pages")
    head = (
        "| page | after an update | cold | warm | queries | KB | < 300 ms? |\n"
        "|---|---:|---:|---:|---:|---:|:---:|"
    )
    if p is None:
        return "\n".join([head, _row(NOT, "", "", "", "", "", "")])
    lines = [head]
    for r in p["rows"]:
        lines.append(
            _row(
                f"`{r['path']}`",
                _s(r["after_update_ms"], "ms"),
                _s(r["cold_ms"], "ms"),
                _s(r["warm_ms"], "ms"),
                str(r["queries"]),
                f"{r['kilobytes']:,.0f}",
                _met(r["ok"]),
            )
        )
    return "\n".join(lines)
