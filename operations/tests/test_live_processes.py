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
        options = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            **{**options, **kwargs},
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


def http_get(url: str) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_readyz_follows_a_real_qcluster_stopping_and_starting_again(site):
    site.call("run_update", "--no-prices")  # a recent finished update
    fast = {"QUANTSITE_READY_WORKER_SECONDS": "4"}
    port = 8231
    web = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "daphne"),
            "-p",
            str(port),
            "quantsite.asgi:application",
        ],
        cwd=ROOT,
        env={**site.env, **fast},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/readyz"
    cluster = None
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=60)
        code, body = http_get(url)
        assert (code, body["reason"]) == (503, "no worker heartbeat")
        cluster = site.manage("qcluster", stdout=subprocess.DEVNULL)
        wait_for(lambda: http_get(url)[0] == 200, timeout=60, every=0.5)
        assert http_get(url)[1]["checks"] == {
            "database": "ok", "migrations": "ok", "worker": "ok", "last_update": "ok"
        }  # fmt: skip
        stop(cluster, signal.SIGINT)
        code, body = wait_for(lambda: (r := http_get(url))[0] == 503 and r, timeout=15, every=0.5)
        assert body["reason"] == "no worker heartbeat" and body["checks"]["worker"] == "stale"
        cluster = site.manage("qcluster", stdout=subprocess.DEVNULL)
        wait_for(lambda: http_get(url)[0] == 200, timeout=60, every=0.5)
    finally:
        if cluster is not None:
            stop(cluster, signal.SIGINT)
        stop(web)


def test_an_idle_qcluster_exits_within_10_s_of_sigint(site):
    cluster = site.manage("qcluster")
    time.sleep(6)  # fully started: sentinel, workers, pusher, monitor
    started = time.monotonic()
    cluster.send_signal(signal.SIGINT)
    out, _ = cluster.communicate(timeout=30)
    assert time.monotonic() - started < 10, out
    assert "has stopped" in out


def test_make_run_stops_within_10_s_of_ctrl_c_even_with_a_busy_worker(site):
    site.call("shell", "-c", "from django_q.tasks import async_task; async_task('time.sleep', 60)")
    port = 8233
    make = subprocess.Popen(
        ["make", "run", "-o", "venv", f"BIN={Path(sys.executable).parent}", f"PORT={port}"],
        cwd=ROOT,
        env=site.env,
        start_new_session=True,  # its own group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, timeout=120)
        wait_for(lambda: not site.query("SELECT 1 FROM django_q_ormq WHERE lock IS NULL"), 10)
        time.sleep(2)  # the worker is inside time.sleep(60)
        started = time.monotonic()
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C sends
        out, _ = make.communicate(timeout=30)
        assert time.monotonic() - started < 10, out
        assert "stopping" in out
        time.sleep(0.5)
        left = subprocess.run(
            ["ps", "-o", "pid=,stat=,args=", "-g", str(make.pid)], capture_output=True, text=True
        ).stdout
        alive = [line for line in left.splitlines() if line.split()[1][0] != "Z"]
        assert alive == [], left  # nothing left in the group but zombies awaiting init
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
        site.query("DELETE FROM django_q_ormq")
