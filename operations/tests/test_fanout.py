"""Scale out (issue 10, point 6): the per-strategy targets computed over django-q2 workers
leave the same rows, bit for bit, as the in-process path (``operations.digest``); a
worker error or a timeout fails the run and stores nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django_q.conf import Conf
from django_q.models import Task

from operations import fanout
from operations.digest import tables_diff, tables_digest
from operations.fanout import FanoutError, fanout_groups
from operations.tests.test_live_equals_replay import (  # noqa: F401
    END,
    _configure,
    _path_tables,
    bars,
)
from operations.update import run_update
from portfolio.models import Portfolio, PortfolioSnapshot, Trade, UpdateRun

ROOT = Path(__file__).resolve().parents[2]


def test_fanout_groups_follow_the_settings(settings):
    settings.QUANTSITE_FANOUT_MIN_STRATEGIES = 20
    settings.QUANTSITE_FANOUT = "off"
    assert fanout_groups(100) == 0
    settings.QUANTSITE_FANOUT = "3"
    assert fanout_groups(19) == 0 and fanout_groups(100) == 3
    settings.QUANTSITE_FANOUT = "auto"
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3}
    assert fanout_groups(100) == 2  # one worker is running the update itself
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    assert fanout_groups(100) == 1  # so: in process
    settings.QUANTSITE_FANOUT_MIN_STRATEGIES = 1
    settings.QUANTSITE_FANOUT = "8"
    assert fanout_groups(5) == 5
    assert [len(g) for g in fanout._split(list(range(7)), 3)] == [3, 2, 2]


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("method", ["static", "risk_parity"])
def test_fanout_leaves_the_same_rows_as_in_process(method, bars, settings, monkeypatch):  # noqa: F811
    settings.QUANTSITE_FANOUT = "off"
    plain = _path_tables(method, lambda p: run_update(as_of=END, load_prices=False))
    settings.QUANTSITE_FANOUT, settings.QUANTSITE_FANOUT_MIN_STRATEGIES = "2", 2
    monkeypatch.setattr(Conf, "SYNC", True)
    calls = []
    real = fanout.spec_targets

    def counting(spec, closes, tradable):
        calls.append(spec.name)
        return real(spec, closes, tradable)

    monkeypatch.setattr(fanout, "spec_targets", counting)
    spread = _path_tables(method, lambda p: run_update(as_of=END, load_prices=False))
    assert len(calls) == 5  # every strategy went through the workers' function
    assert not Task.objects.filter(group__startswith="fanout-").exists()
    assert tables_digest(spread) == tables_digest(plain), tables_diff(plain, spread)


def _assert_nothing_stored(portfolio: Portfolio):
    portfolio.refresh_from_db()
    assert portfolio.last_applied_date is None
    assert not PortfolioSnapshot.objects.filter(portfolio=portfolio).exists()
    assert not Trade.objects.filter(strategy__portfolio=portfolio).exists()
    run = UpdateRun.objects.latest("id")
    assert run.status == UpdateRun.Status.FAILED and "FanoutError" in run.error
    return run


@pytest.mark.django_db
def test_a_worker_error_fails_the_run_and_stores_nothing(bars, settings, monkeypatch):  # noqa: F811
    settings.QUANTSITE_FANOUT, settings.QUANTSITE_FANOUT_MIN_STRATEGIES = "2", 2
    monkeypatch.setattr(Conf, "SYNC", True)
    portfolio = _configure("static")
    real = fanout.spec_targets

    def broken(spec, closes, tradable):
        if spec.name == portfolio.strategies.order_by("position_order", "id").last().name:
            raise ValueError("worker blew up")
        return real(spec, closes, tradable)

    monkeypatch.setattr(fanout, "spec_targets", broken)
    with pytest.raises(FanoutError, match="worker blew up"):
        run_update(as_of=END, load_prices=False)
    _assert_nothing_stored(portfolio)
    assert not Task.objects.filter(group__startswith="fanout-").exists()


@pytest.mark.django_db
def test_a_timeout_fails_the_run_and_stores_nothing(bars, settings, monkeypatch):  # noqa: F811
    """No worker answers (no qcluster running): the run fails after the timeout."""
    settings.QUANTSITE_FANOUT, settings.QUANTSITE_FANOUT_MIN_STRATEGIES = "2", 2
    settings.QUANTSITE_FANOUT_TIMEOUT = 1
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr("django_q.tasks.get_broker", lambda *a, **k: _NoBroker())
    portfolio = _configure("static")
    t = time.monotonic()
    with pytest.raises(FanoutError, match="timed out"):
        run_update(as_of=END, load_prices=False)
    assert time.monotonic() - t < 30
    run = _assert_nothing_stored(portfolio)
    assert "0 of 2 groups" in run.error


class _NoBroker:
    list_key = "nobody"

    def enqueue(self, pack):
        return "dropped"


@pytest.mark.slow
def test_fanout_over_a_real_qcluster_gives_the_in_process_digest(tmp_path):
    """A real ``manage.py qcluster`` (2 workers) and a check process on one database the
    subprocesses can open: a file SQLite database in ``tmp_path`` with the ORM broker, or,
    when both ``DATABASE_URL`` and ``REDIS_URL`` are set (the PG CI run), that database
    itself (not the test database: its portfolios are replaced) with the Redis broker.
    The check process applies the demo book in process, then through ``run_update`` with
    the fan-out on, and both digests must be equal."""
    env = {
        **os.environ,
        "QUANTSITE_DATA_DIR": str(tmp_path),
        "QUANTSITE_Q_WORKERS": "2",
        "DJANGO_SETTINGS_MODULE": "quantsite.settings",
    }
    if not (env.get("DATABASE_URL") and env.get("REDIS_URL")):
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    cluster = subprocess.Popen(
        [py, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        check = subprocess.run(
            [py, "-m", "operations.fanout_check", "1991-06-28"],
            cwd=ROOT,
            env={**env, "QUANTSITE_FANOUT_TIMEOUT": "300"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert check.returncode == 0, check.stderr[-3000:]
        out = json.loads(check.stdout.strip().splitlines()[-1])
        assert out["status"] == "success" and out["dates"] > 300
        assert out["fanout"] == out["plain"]
    finally:
        cluster.terminate()
        try:
            cluster.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
