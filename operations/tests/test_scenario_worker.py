"""The scenarios after an update through a real ``qcluster`` on the embedded default: Update
now queues the update task, the worker applies the new bars, queues the scenarios and
runs them: every enabled window (both modes), shock and projection is stored once for the
new state, computed by the worker, not by the web process."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from operations.tests.test_live_processes import Site, stop, wait_for

pytestmark = pytest.mark.slow

WINDOW = (
    "from risk.models import StressWindow; from datetime import date; "
    "StressWindow.objects.update(enabled=False); "
    "StressWindow.objects.create(name='1990 recession', start=date(1990, 7, 16), "
    "end=date(1990, 10, 11))"
)
ENQUEUE = "from operations.runs import update_enqueue; print(update_enqueue().queued)"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    site = Site(tmp_path_factory.mktemp("scenario-site"))
    site.env["QUANTSITE_Q_WORKERS"] = "1"
    site.env["QUANTSITE_REPLAY_BARS_PER_UPDATE"] = "1"  # the update loads one bar more
    site.call("migrate", "-v0")
    site.call("load_prices", "--until", "1993-12-31")
    site.call("load_config")
    site.call("run_update", "--no-prices")
    site.call("load_prices", "--until", "1994-01-31")  # bars for the worker to apply
    site.call("shell", "-c", WINDOW)
    return site


def test_update_now_through_a_real_qcluster_runs_the_scenarios_on_the_new_state(site):
    assert site.query("SELECT COUNT(*) FROM risk_scenariorun") == [(0,)]
    cluster = site.manage("qcluster", stdout=subprocess.DEVNULL)
    try:
        assert site.call("shell", "-c", ENQUEUE).strip().endswith("True")
        runs = wait_for(
            lambda: (
                rows := site.query(
                    "SELECT kind, name, status, trigger, as_of FROM risk_scenariorun"
                )
            )
            and len(rows) >= 6
            and rows,
            timeout=240,
            every=0.5,
        )
        time.sleep(2)  # let the task finish writing
        runs = site.query("SELECT kind, name, status, trigger, as_of FROM risk_scenariorun")
    finally:
        stop(cluster, signal.SIGINT)
    [(last,)] = site.query("SELECT last_applied_date FROM portfolio_portfolio")
    assert last == "1994-02-01"  # the bars loaded for it and the one it loaded
    assert {r[3] for r in runs} == {"schedule"} and {r[4] for r in runs} == {last}
    kinds = sorted((k, n, s) for k, n, s, _t, _a in runs if k in ("stress", "shock"))
    assert kinds == [
        ("shock", "Market -10%", "success"),
        ("shock", "Tech -20%, rest -5%", "success"),
        ("stress", "1990 recession", "success"),
        ("stress", "1990 recession", "success"),
    ]
    statuses = {k: s for k, _n, s, _t, _a in runs if k not in ("stress", "shock")}
    assert statuses["montecarlo"] == "success" and statuses["regime"] == "success"
