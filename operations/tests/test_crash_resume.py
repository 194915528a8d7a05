"""Crash-exact: a replay SIGKILLed at random moments and restarted until done leaves every
table bit for bit as an uninterrupted run does (``operations.digest``), and so does an
alert delivery killed mid-send, within the outbox's rule.

Each update runs in its own process (``crash_driver``) against its own copy of one
template database (prices to ``conftest.END``, the replay configuration, two webhook
channels), with ``QUANTSITE_DATES_PER_COMMIT=10``. A chain is a sequence of runs on one
copy: each is killed with SIGKILL a random time after it claimed its run row or, four
times in five, after it committed its first chunk (up to a quarter of an uninterrupted
replay's apply time); one run per chain is killed instead while it computes or writes
the chunk holding a portfolio rebalance date; the last run goes to the end and prints
the digest. Every kill of a run still in progress is a trial; chains are added until
there are ``QUANTSITE_CRASH_KILLS`` (20). The RNG seed is printed and can be set with
``QUANTSITE_CRASH_SEED``.

The databases are SQLite files, or PostgreSQL databases named after the suite's own
(``<name>_crash_*``, copied with ``CREATE DATABASE ... TEMPLATE``) when the suite runs
with a PostgreSQL ``DATABASE_URL``.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from operations.tests.processes import CHUNK, HOOK_PORT, Database, World, digest_of, wait_for
from risk.alerts import CLAIM_LEASE

KILLS_PER_CHAIN = 5
MAX_CHAINS = 10
REBALANCE_KILL = 1  # which kill of a chain lands in a rebalance chunk
pytestmark = pytest.mark.slow


def _seed() -> int:
    seed = int(os.environ.get("QUANTSITE_CRASH_SEED") or random.SystemRandom().randrange(10**6))
    print(f"crash harness seed: {seed} (rerun with QUANTSITE_CRASH_SEED={seed})")
    return seed


def _rebalance_chunk_end(world: World, last: str | None) -> tuple[str | None, str] | None:
    """For a run resuming after ``last``: the last date committed before the chunk holding
    the next rebalance date, and that date; None when no rebalance is left."""
    start = 0 if last is None else world.dates.index(last) + 1
    for r in world.rebalances:
        i = world.dates.index(r)
        if i >= start:
            j = start + (i - start) // CHUNK * CHUNK
            return (world.dates[j - 1] if j > start else last), r
    return None


def _kill_one(
    world: World, db: Database, rng: random.Random, *, rebalance: bool, spread: float
) -> dict:
    """Start one run and SIGKILL it (module docstring); what the kill hit."""
    before = db.last_applied()
    target = _rebalance_chunk_end(world, before) if rebalance else None
    proc = world.site.start(db, "update")
    claimed = f"SELECT 1 FROM portfolio_updaterun WHERE status = 'running' AND pid = {proc.pid}"
    wait_for(lambda: db.query(claimed) or proc.poll() is not None, timeout=120)
    if target is not None:
        committed, _ = target
        wait_for(
            lambda: (db.last_applied() or "") >= (committed or "") or proc.poll() is not None,
            timeout=120,
        )
        time.sleep(rng.uniform(0, 0.04))
    else:
        if rng.random() < 0.8:  # mostly mid-replay: once this run has committed a chunk
            wait_for(lambda: db.last_applied() != before or proc.poll() is not None, 120)
        time.sleep(rng.uniform(0, spread))
    finished = proc.poll() is not None
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    after = db.last_applied()
    hit = {"pid": proc.pid, "finished": finished, "before": before, "after": after, "out": out}
    if target is not None:
        landed = target[0] is not None and after == target[0] and not finished
        hit["rebalance"] = target[1] if landed else None
    return hit


def test_a_replay_killed_at_random_moments_resumes_bit_for_bit(world):
    rng = random.Random(_seed())
    target = int(os.environ.get("QUANTSITE_CRASH_KILLS", "20"))
    # kills spread over the replay whatever the machine's speed: about a sixth of an
    # uninterrupted replay's apply time between a run's first commit and its kill
    spread = 1.5 * world.apply_seconds / (KILLS_PER_CHAIN + 1)
    kills, rebalance_kills, chain = 0, [], 0
    while kills < target and chain < MAX_CHAINS:
        db = world.copy(f"chain{chain}")
        hits = []
        for k in range(KILLS_PER_CHAIN):
            hit = _kill_one(world, db, rng, rebalance=k == REBALANCE_KILL, spread=spread)
            hits.append(hit)
            if hit["finished"]:
                break
        final = world.site.finish(db, "update")
        print(f"chain {chain}: killed at " + ", ".join(str(h["after"]) for h in hits))
        assert digest_of(final) == world.digest, (chain, hits)
        # every killed run that had not finished was failed from its dead pid, none is
        # left running (one killed after it recorded success stays success; one killed
        # before it claimed a row left none, and its lock was taken over)
        runs = db.query("SELECT pid, status, error FROM portfolio_updaterun ORDER BY id")
        by_pid = {pid: (status, error) for pid, status, error in runs}
        for h in hits:
            if not h["finished"] and by_pid.get(h["pid"], ("success",))[0] != "success":
                assert by_pid[h["pid"]] == ("failed", f"worker died: process {h['pid']} is gone")
                kills += 1
                if h.get("rebalance"):
                    rebalance_kills.append(h["rebalance"])
        assert {status for _, status, _ in runs} <= {"failed", "success"}, runs
        assert runs[-1][1] == "success" and not db.query("SELECT 1 FROM portfolio_runlock")
        db.drop()
        chain += 1
    print(f"{kills} kills mid-run, {len(rebalance_kills)} in a rebalance chunk: {rebalance_kills}")
    assert kills >= target
    assert len(rebalance_kills) >= max(1, chain // 2)


def test_a_one_unit_change_to_one_stored_number_changes_the_digest(world):
    db = world.copy("control", world.reference)
    assert digest_of(world.site.finish(db, "digest")) == world.digest
    [(pk, value)] = db.query("SELECT id, cash FROM portfolio_strategy ORDER BY id LIMIT 1")
    db.query(
        "UPDATE portfolio_strategy SET cash = %s WHERE id = %s", math.nextafter(value, 1e300), pk
    )
    assert digest_of(world.site.finish(db, "digest")) != world.digest


class Receiver(ThreadingHTTPServer):
    """The channels' webhook: records every request and holds each one open until
    ``release`` is set, so the sender is blocked mid-delivery when it is killed."""

    daemon_threads = True

    def __init__(self):
        self.requests: list[tuple[str, int]] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", HOOK_PORT), _Hook)

    def handle_error(self, request, client_address):
        pass  # answering a killed sender: its socket is gone (BrokenPipeError)


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append((self.path, body["violation_id"]))
        self.server.release.wait(60)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_an_alert_delivery_killed_mid_send_is_sent_again_once_and_none_is_lost(world):
    """The outbox's rule: one AlertDelivery row per (channel, violation), always; a
    delivery is sent again only when the sender died between claiming it and recording
    its outcome (at least once, receivers deduplicate on ``violation_id``), and not
    before the claim's lease (``CLAIM_LEASE``) has lapsed, so no second sender races it."""
    db = world.copy("alerts", world.reference)
    rows = db.query(
        "SELECT c.name, d.violation_id, d.status FROM risk_alertdelivery d "
        "JOIN risk_alertchannel c ON c.id = d.channel_id ORDER BY d.id"
    )
    assert len(rows) >= 20 and {r[2] for r in rows} == {"pending"}
    expected = sorted((f"/{'a' if name == 'hook' else 'b'}", v) for name, v, _ in rows)
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        sender = world.site.start(db, "deliver", "0")
        wait_for(lambda: len(receiver.requests) >= 4, timeout=120)  # every sender thread
        time.sleep(0.2)
        os.kill(sender.pid, signal.SIGKILL)
        sender.communicate(timeout=30)
        in_flight = list(receiver.requests)
        receiver.release.set()
        # a restart within the lease sends nothing: the dead sender's claim still holds
        assert "SENT 0" in world.site.finish(db, "deliver", "0")
        assert len(receiver.requests) == len(in_flight)
        lapsed = CLAIM_LEASE.total_seconds() + 60
        out = world.site.finish(db, "deliver", str(lapsed))
        assert f"SENT {len(rows)}" in out, out
    finally:
        receiver.shutdown()
        receiver.server_close()
    after = db.query(
        "SELECT channel_id, violation_id, status, attempts FROM risk_alertdelivery ORDER BY id"
    )
    assert len(after) == len(rows)  # still exactly one row per channel + violation
    assert len({(c, v) for c, v, _, _ in after}) == len(rows)
    assert {(s, a) for _, _, s, a in after} == {("sent", 1)}
    assert sorted(set(receiver.requests)) == expected  # none lost
    repeats = [r for r in set(receiver.requests) if receiver.requests.count(r) > 1]
    assert sorted(repeats) == sorted(in_flight)  # only what was in flight, once more
    assert all(receiver.requests.count(r) == 2 for r in repeats)
