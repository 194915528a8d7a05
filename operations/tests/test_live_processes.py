"""Real processes on a file SQLite database in a tmp dir (the embedded configuration): a
SIGKILLed ``manage.py run_update`` leaves no run "running", two concurrent Update now
requests queue one task, and a real ``qcluster`` stops within 10 s of SIGINT."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class Site:
    """An embedded Quantsite in ``data_dir``: its own SQLite file and settings."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("QUANTSITE_")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="quantsite.settings",
            QUANTSITE_DATA_DIR=str(data_dir),
            PYTHONUNBUFFERED="1",
        )

    def manage(self, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kwargs,
        )

    def call(self, *args: str, env: dict | None = None, timeout: float = 300) -> str:
        proc = self.manage(*args, env=env)
        out, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, out
        return out

    def query(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.data_dir / "quantsite.sqlite3", timeout=30) as db:
            return db.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    site = Site(tmp_path_factory.mktemp("site"))
    site.call("migrate", "-v0")
    site.call("load_prices", "--until", "1995-12-29")
    site.call("load_config")
    return site


def wait_for(predicate, timeout: float, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


def test_a_sigkilled_update_is_marked_failed_and_the_next_update_succeeds(site):
    small_chunks = {"QUANTSITE_DATES_PER_COMMIT": "20"}
    victim = site.manage("run_update", "--no-prices", env=small_chunks)
    # Kill it once it is running and has committed at least one chunk.
    wait_for(
        lambda: site.query(
            "SELECT 1 FROM portfolio_updaterun r JOIN portfolio_portfolio p "
            "WHERE r.status = 'running' AND p.last_applied_date IS NOT NULL"
        ),
        timeout=120,
        every=0.05,
    )
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    [(killed_id, status, pid)] = site.query("SELECT id, status, pid FROM portfolio_updaterun")
    assert (status, pid) == ("running", victim.pid)  # what the kill left behind
    assert site.query("SELECT pid FROM portfolio_runlock WHERE name = 'update'") == [(victim.pid,)]

    out = site.call("run_update", "--no-prices", env=small_chunks)
    assert "update success" in out
    [(status, error)] = site.query(
        "SELECT status, error FROM portfolio_updaterun WHERE id = ?", killed_id
    )
    assert status == "failed" and error == f"worker died: process {victim.pid} is gone"
    [(status, last)] = site.query(
        "SELECT status, last_date FROM portfolio_updaterun WHERE id != ?", killed_id
    )
    assert (status, last) == ("success", "1995-12-29")
    assert site.query("SELECT last_applied_date FROM portfolio_portfolio") == [("1995-12-29",)]
    assert not site.query("SELECT 1 FROM portfolio_runlock")


RACE = """
import sys, time
from operations.runs import update_enqueue
while time.time() < {start}:
    time.sleep(0.001)
r = update_enqueue()
print("QUEUED" if r.queued else "CONFLICT", r.run.pk if r.run else None)
"""


def test_two_update_now_requests_at_once_queue_one_task(site):
    site.query("DELETE FROM portfolio_updaterun")
    site.query("DELETE FROM django_q_ormq")
    start = time.time() + 4
    procs = [site.manage("shell", "-c", RACE.format(start=start)) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0].strip().splitlines()[-1] for p in procs]
    verdicts = sorted(o.split()[0] for o in outs)
    assert verdicts == ["CONFLICT", "QUEUED"], outs
    assert {o.split()[1] for o in outs} == {
        str(site.query("SELECT id FROM portfolio_updaterun")[0][0])
    }
    assert site.query("SELECT COUNT(*) FROM django_q_ormq") == [(1,)]
    assert site.query("SELECT status FROM portfolio_updaterun") == [("queued",)]
    site.query("DELETE FROM django_q_ormq")
    site.query("DELETE FROM portfolio_updaterun")
