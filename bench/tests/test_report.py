"""bench/report.py merges sections into results.json and renders every issue-12 row."""

from __future__ import annotations

import json

from bench.report import render, section_read, section_write


def test_a_section_replaces_only_itself_and_missing_figures_read_not_measured(tmp_path):
    path, md = tmp_path / "results.json", tmp_path / "RESULTS.md"
    section_write(
        "update",
        {"update_s": 0.5, "warm_s": 0.1, "strategies": 5, "dates_replayed": 8312},
        path,
        md,
    )
    section_write("pages", {"rows": []}, path, md)
    section_write(
        "update",
        {"update_s": 0.05, "warm_s": 0.1, "strategies": 5, "dates_replayed": 8312},
        path,
        md,
    )
    results = json.loads(path.read_text())
    assert sorted(results["sections"]) == ["pages", "update"]
    assert section_read("update", path)["update_s"] == 0.05
    assert section_read("peers", path) is None
    assert {"cpu", "cores", "ram_gib", "python"} <= set(results["machine"])
    text = md.read_text()
    assert text == render(results)
    assert "| one new bar, the demo's 5 strategies after a replay of 8,312 dates | 0.05 s |" in text
    backtest = text.split("## `manage.py backtest`")[1].split("##")[0]
    assert "not measured" in backtest


def test_the_push_and_memory_rows_show_their_figures_and_say_whether_the_target_is_met(
    tmp_path,
):
    path, md = tmp_path / "results.json", tmp_path / "RESULTS.md"
    row = {"clients": 50, "pushes": 5, "delivered": 250, "expected": 250, "duplicates": 0}
    push = [
        {**row, "layer": "InMemoryChannelLayer", "p50_ms": 100.4, "p99_ms": 107.1, "max_ms": 107.1},
        {**row, "layer": "RedisChannelLayer", "p50_ms": 49.7, "p99_ms": 268.7, "max_ms": 300.0},
    ]
    section_write("push", {"rows": push}, path, md)
    memory = {
        "cycles": 200,
        "warmup": 10,
        "rss_after_warmup_mib": 306.7,
        "rss_last_mib": 313.5,
        "rss_max_mib": 313.5,
        "growth": 0.022,
        "met": True,
        "cycle_seconds_median": 5.2,
    }
    section_write("memory", memory, path, md)
    text = md.read_text()
    push_part = text.split("## One push to 50 websocket clients")[1].split("##")[0]
    assert "p99 107 ms" in push_part and "250/250 delivered, 0 duplicates" in push_part
    assert push_part.count("| yes |") == 1 and push_part.count("| **no** |") == 1
    memory_part = text.split("## Worker memory over 200 update cycles")[1].split("##")[0]
    assert "307 MiB after 10 -> 314 MiB (max 314): +2.2%" in memory_part
    assert "| yes |" in memory_part


def test_the_monte_carlo_row_shows_its_timings_against_the_two_second_target(tmp_path):
    path, md = tmp_path / "results.json", tmp_path / "RESULTS.md"
    figures = {"paths": 10_000, "horizon": 252, "strategies": 10, "rows": 5_000, "repeat": 3}
    figures |= {"wall_s": 0.52, "cpu_s": 0.5, "portfolio_only_wall_s": 0.17}
    figures |= {"peak_rss_mib": 151.2, "target_s": 2.0}
    section_write("montecarlo", figures, path, md)
    part = md.read_text().split("## Monte Carlo")[1].split("##")[0]
    assert "10,000 paths x 252 days x 10 strategies from 5,000 rows" in part
    assert "0.52 s wall, 0.5 s CPU, 151 MiB peak RSS; 0.17 s without" in part
    assert part.rstrip().endswith("| < 2 s on one core | yes |")
    section_write("montecarlo", figures | {"wall_s": 2.5}, path, md)
    part = md.read_text().split("## Monte Carlo")[1].split("##")[0]
    assert part.rstrip().endswith("| < 2 s on one core | **no** |")
