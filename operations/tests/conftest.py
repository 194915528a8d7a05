"""The replay world the process tests share (built once per session): a template
database holding prices to ``END`` and the replay configuration with two webhook
channels, and a reference copy replayed once, uninterrupted."""

from __future__ import annotations

import time
from datetime import date, datetime

import pytest

from operations.tests.processes import HOOK_PORT, Database, Site, World, digest_of

# 253 bar dates, 11 monthly rebalances after the first, 18 violations alerted: long
# enough for every kind of state, short enough for 25 killed runs in a few minutes
END = date(1990, 12, 31)


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("crash")
    site = Site(scratch / "data")
    template = Database(scratch, "template").create_from(None)
    site.manage(template, "migrate", "-v0")
    site.manage(template, "load_prices", "--until", END.isoformat())
    site.finish(template, "setup", f"http://127.0.0.1:{HOOK_PORT}")
    reference = Database(scratch, "reference").create_from(template)
    started = time.monotonic()
    digest = digest_of(site.finish(reference, "update"))
    print(f"uninterrupted replay: {time.monotonic() - started:.1f} s, digest {digest[:12]}")
    dates = [str(d) for (d,) in reference.query(
        "SELECT date FROM portfolio_portfoliosnapshot ORDER BY date"
    )]  # fmt: skip
    rebalances = [str(d) for (d,) in reference.query(
        "SELECT date FROM portfolio_rebalanceevent ORDER BY date"
    )][1:]  # fmt: skip
    assert dates[-1] == END.isoformat() and len(rebalances) >= 10
    [(started_at, finished_at)] = reference.query(
        "SELECT started_at, finished_at FROM portfolio_updaterun"
    )
    seconds = (_when(finished_at) - _when(started_at)).total_seconds()
    w = World(site, template, reference, digest, seconds, dates, rebalances, scratch, [])
    yield w
    for db in [*w.made, reference, template]:
        db.drop()


def _when(value) -> datetime:
    """A timestamp as SQLite (text) or psycopg (datetime) returns it."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
