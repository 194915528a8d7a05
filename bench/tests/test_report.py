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
