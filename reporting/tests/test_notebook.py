"""The demo notebook runs headless (nbclient, the venv's ipykernel, no network) on its own
temporary database, shows the metrics table and ends where ``backtest_summary`` says, and
leaves the repository as it found it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from operations.backtest import backtest_run
from reporting.engine.performance import PerformanceStats

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "quantsite_demo.ipynb"
STRATEGIES = [
    "momentum_60",
    "momentum_120",
    "momentum_200",
    "mean_reversion_20",
    "trend_following_50",
]

# Appended to an in-memory copy only: reports what the notebook computed, as JSON.
PROBE = """\
import json, sys
print(json.dumps({
    "executable": sys.executable,
    "data_dir": DATA_DIR,
    "database": str(django.db.connection.settings_dict["NAME"]),
    "columns": list(metrics.columns),
    "rows": list(metrics.index),
    "portfolio_total_return": float(metrics.loc["Portfolio", "total_return"]),
    "final_equity": float(equity["portfolio_equity"].iloc[-1]),
    "summary": summary["portfolio"]["final_equity"],
    "start": summary["portfolio"]["start"],
    "end": summary["portfolio"]["end"],
}))
"""


def git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_stored_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
@pytest.mark.django_db
def test_the_demo_notebook_runs_headless_and_ends_where_the_backtest_says(tmp_path, monkeypatch):
    # The kernel inherits this environment: temporary files (the notebook's database),
    # IPython's history and Jupyter's connection files all go under tmp_path, and the
    # notebook picks its settings itself, as it would for a user.
    for name in ("TMPDIR", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
        (tmp_path / name.lower()).mkdir()
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgres://nobody@192.0.2.1:1/never-used")
    before = git_status()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in errors if o.output_type == "error"]
    report = json.loads(nb.cells[-1].outputs[0]["text"])

    # the kernel ran this venv's Python, on a database in the temporary directory
    assert Path(report["executable"]).resolve() == Path(sys.executable).resolve()
    assert Path(report["data_dir"]).is_relative_to(tmp_path / "tmpdir")
    assert Path(report["database"]).is_relative_to(report["data_dir"])

    fields = [f.name for f in dataclasses.fields(PerformanceStats)]
    assert report["columns"] == fields
    assert report["rows"] == ["Portfolio", *STRATEGIES, "S&P 500"]
    assert (report["start"], report["end"]) == ("2017-01-03", "2019-12-31")
    assert report["final_equity"] == report["summary"]
    growth = report["final_equity"] / 100_000 - 1
    assert report["portfolio_total_return"] == pytest.approx(growth, rel=1e-9)

    # the same backtest run here, on the test database, ends at the same equity
    ours = backtest_run(
        config_path=ROOT / "config" / "strategy_allocation.yaml",
        start=date(2017, 1, 3),
        end=date(2019, 12, 31),
    )
    assert report["summary"] == pytest.approx(ours["portfolio"]["final_equity"], rel=1e-9)

    # the charts were drawn (Plotly's bundle), and nothing was written into the repository
    shown = [o for c in nb.cells for o in c.get("outputs", []) if "data" in o]
    mime = "application/vnd.plotly.v1+json"
    plotly = [o["data"][mime] for o in shown if mime in o["data"]]
    titles = [fig["layout"]["title"]["text"] for fig in plotly]
    assert titles == ["Equity", "Drawdown", "Monthly returns"]  # reporting.charts
    assert git_status() == before
