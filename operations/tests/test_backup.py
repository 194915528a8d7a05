"""``manage.py backup`` / ``restore`` on real processes and real databases: SQLite files in a
tmp dir on the SQLite leg, PostgreSQL databases of their own on the PostgreSQL leg (named
after the leg's DATABASE_URL database, dropped after). A backup taken while a subprocess
applies bars one run_update at a time restores into a fresh database whose every stored row
equals, bit for bit (``operations.digest``), a reference replayed to the restored
``last_applied_date``: the backup is one consistent snapshot. Every refusal is one clear
message and leaves the database's digest as it was."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from uuid import uuid4

import pytest

from operations.backup import RESTORED_RUN_ERROR, BackupError, sqlite_copy, sqlite_swap

ROOT = Path(__file__).resolve().parents[2]
BASE_URL = os.environ.get("DATABASE_URL", "")
POSTGRES = BASE_URL.startswith(("postgres://", "postgresql://"))
UNTIL = "1992-06-30"  # ~630 bars: the loop is still applying them when the backup is taken

DIGEST = """
import json
from operations.digest import portfolio_digest
from portfolio.models import Portfolio, PriceBar, RunLock, UpdateRun
print("DIGEST " + json.dumps({
    "books": {p.name: [str(p.last_applied_date), portfolio_digest(p)]
              for p in Portfolio.objects.order_by("name")},
    "bars": PriceBar.objects.count(),
    "in_flight": UpdateRun.objects.filter(status__in=UpdateRun.IN_FLIGHT).count(),
    "restored_errors": UpdateRun.objects.filter(error=RESTORED_ERROR).count(),
    "locks": RunLock.objects.count(),
}))
"""

# The scheduler's way: one run_update per new bar (two dates per call), each its own run.
LOOP = """
import time
from operations.update import run_update
from portfolio.models import PriceBar
dates = sorted(set(PriceBar.objects.values_list("date", flat=True)))
for d in dates[::2]:
    r = run_update(as_of=d, trigger="command", load_prices=False)
    print("APPLIED", d.isoformat(), time.time(), r.status, flush=True)
"""


class Site:
    """A Quantsite with its own data dir and database (a SQLite file, or a PostgreSQL
    database created for it when the leg runs on PostgreSQL)."""

    def __init__(self, data_dir: Path, *, create: bool = True):
        self.data_dir = data_dir
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k != "DATABASE_URL" and not k.startswith("QUANTSITE_")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="quantsite.settings",
            QUANTSITE_DATA_DIR=str(data_dir),
            PYTHONUNBUFFERED="1",
        )
        self.db_name = None
        if POSTGRES:
            base = urllib.parse.urlsplit(BASE_URL)
            self.db_name = f"{base.path.lstrip('/')}_bk_{uuid4().hex[:8]}"
            self.env["DATABASE_URL"] = base._replace(path="/" + self.db_name).geturl()
            if create:
                self._admin(f'CREATE DATABASE "{self.db_name}"')

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "quantsite.sqlite3"

    def sql(self, statement: str, *params) -> None:
        """One statement straight on the site's database (``%s`` placeholders)."""
        if POSTGRES:
            import psycopg

            with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
                conn.execute(statement, params)
        else:
            with sqlite3.connect(self.sqlite_path, timeout=30) as db:
                db.execute(statement.replace("%s", "?"), params)
            db.close()

    def _admin(self, statement: str):
        import psycopg

        base = urllib.parse.urlsplit(BASE_URL)._replace(path="/postgres").geturl()
        with psycopg.connect(base, autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if statement.startswith("SELECT") else None

    def drop(self) -> None:
        if POSTGRES:
            for (name,) in self._admin(
                f"SELECT datname FROM pg_database WHERE datname LIKE '{self.db_name}%'"
            ):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def manage(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**self.env, **kwargs.pop("env", {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kwargs,
        )

    def run(self, *args: str, timeout: float = 300) -> tuple[int, str]:
        proc = self.manage(*args)
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out

    def call(self, *args: str) -> str:
        code, out = self.run(*args)
        assert code == 0, out
        return out

    def refuse(self, *args: str) -> str:
        """The command's one-line error (exit status 1, no traceback)."""
        code, out = self.run(*args)
        assert code == 1 and "Traceback" not in out, out
        [line] = [line for line in out.splitlines() if line.startswith("CommandError")]
        return line

    def state(self) -> dict:
        out = self.call("shell", "-c", DIGEST.replace("RESTORED_ERROR", repr(RESTORED_RUN_ERROR)))
        return json.loads(out.split("DIGEST ", 1)[1])

    def setup(self) -> Site:
        self.call("migrate", "-v0")
        self.call("load_prices", "--until", UNTIL)
        self.call("load_config")
        return self


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """A configured site with the prices loaded and no bar applied, and its backup: every
    other site here starts as a restore of it (one price load for the module)."""
    site = Site(tmp_path_factory.mktemp("seed")).setup()
    site.backup = tmp_path_factory.mktemp("seed-backup") / "seed.backup"
    site.call("backup", str(site.backup))
    site.initial = site.state()
    yield site
    site.drop()


@pytest.fixture
def new_site(tmp_path, seed):
    made = []

    def make(name: str, *, restore: bool = True) -> Site:
        """A site with no database yet; ``restore``: restored from the seed's backup."""
        made.append(Site(tmp_path / name, create=False))
        if restore:
            made[-1].call("restore", str(seed.backup))
        return made[-1]

    yield make
    for site in made:
        site.drop()


class Lines:
    """A process's stdout lines, read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc):
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def applied(self) -> list[tuple[str, float]]:
        parts = [line.split() for line in self.lines if line.startswith("APPLIED ")]
        return [(p[1], float(p[2])) for p in parts]

    def wait(self, predicate, proc, timeout: float = 180):
        deadline = time.monotonic() + timeout
        while not predicate(self.applied()):
            assert proc.poll() is None, "\n".join(self.lines[-30:])
            assert time.monotonic() < deadline, "\n".join(self.lines[-30:])
            time.sleep(0.05)


@pytest.mark.slow
def test_a_backup_taken_while_updates_run_restores_to_exactly_the_state_of_its_date(
    new_site, tmp_path
):
    source = new_site("source")
    loop = source.manage("shell", "-c", LOOP)
    lines = Lines(loop)
    try:
        lines.wait(lambda applied: len(applied) >= 5, loop)
        started = time.time()
        out = source.call("backup", str(tmp_path / "live.backup"))
        finished = time.time()
        # the updates went on through the backup: a commit before it and one after it
        lines.wait(lambda applied: applied[-1][1] > finished, loop)
        assert lines.applied()[0][1] < started
        assert loop.poll() is None  # still applying bars: the backup did not wait for it
    finally:
        loop.kill()
        loop.wait()
    assert f"backup written: {tmp_path / 'live.backup'}" in out

    fresh = new_site("fresh", restore=False)  # no database at all yet
    assert "restored from" in fresh.call("restore", str(tmp_path / "live.backup"))
    restored = fresh.state()
    [(name, (as_of, digest))] = restored["books"].items()
    applied = [d for d, _ in lines.applied()]
    assert applied[0] <= as_of < applied[-1]  # a state the loop passed through, not its end
    # what a backup taken mid-run holds in flight is closed: no run running, no lock held
    assert restored["in_flight"] == 0 and restored["locks"] == 0

    reference = new_site("reference")  # the same start, replayed in one go to that date
    reference.call("run_update", "--no-prices", "--as-of", as_of)
    expected = reference.state()
    assert expected["books"] == {name: [as_of, digest]}
    assert expected["bars"] == restored["bars"]


@pytest.mark.slow
def test_every_refusal_is_one_message_and_leaves_the_database_as_it_was(seed, tmp_path):
    good = seed.backup
    good_bytes = good.read_bytes()
    message = seed.refuse("backup", str(good))
    assert message.endswith(f"{good} exists: choose another name, or --force to replace it")
    assert good.read_bytes() == good_bytes

    message = seed.refuse("restore", str(good))
    assert "the database holds data: --force to replace it" in message

    text = tmp_path / "notes.txt"
    text.write_text("not a backup\n")
    assert "wrong format: neither a SQLite database nor a pg_dump" in seed.refuse("restore", text)

    other = tmp_path / "other.backup"  # the other engine's kind of backup
    if POSTGRES:
        sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    else:
        other.write_bytes(b"PGDMP" + bytes(200))
    kinds = ("a SQLite backup", "PostgreSQL") if POSTGRES else ("a PostgreSQL backup", "SQLite")
    assert "wrong format: {}, but this site's database is {}".format(*kinds) in seed.refuse(
        "restore", "--force", other
    )

    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(good_bytes[: len(good_bytes) // 3])
    message = seed.refuse("restore", "--force", truncated)
    assert "restore refused, nothing changed: " in message and str(truncated) in message

    if POSTGRES:
        message = seed.refuse("backup", str(tmp_path / "x.backup"), "--pg-bin", str(tmp_path))
        assert f"pg_dump not found in {tmp_path}: install the PostgreSQL client" in message
        assert not (tmp_path / "x.backup").exists()

    nowhere = Site(tmp_path / "nowhere", create=False)  # no database to back up
    message = nowhere.refuse("backup", str(tmp_path / "nothing.backup"))
    if POSTGRES:
        assert "pg_dump failed: pg_dump: error: connection to server" in message
        assert f'database "{nowhere.db_name}" does not exist' in message
    else:
        assert f"{nowhere.sqlite_path}: no such database file: nothing to back up" in message
    assert not (tmp_path / "nothing.backup").exists()

    # a backup made by a newer Quantsite: a migration this code does not have
    migration = ("portfolio", "9999_from_the_future")
    seed.sql(
        "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)",
        *migration,
        "2026-01-01 00:00:00",
    )
    newer = tmp_path / "newer.backup"
    try:
        seed.call("backup", str(newer))
    finally:
        seed.sql("DELETE FROM django_migrations WHERE app = %s AND name = %s", *migration)
    message = seed.refuse("restore", "--force", str(newer))
    assert "made by a newer Quantsite (migrations this code does not have: " in message
    assert "portfolio.9999_from_the_future): upgrade the code first" in message

    # an update holding the lock (a live process on this host: this one)
    now = "2100-01-01 00:00:00"  # a heartbeat in the future is never stale
    seed.sql(
        "INSERT INTO portfolio_runlock (name, owner, pid, host, acquired_at, heartbeat_at) "
        "VALUES ('update', 'test', %s, %s, %s, %s)",
        os.getpid(),
        socket.gethostname(),
        now,
        now,
    )
    try:
        message = seed.refuse("restore", "--force", str(good))
    finally:
        seed.sql("DELETE FROM portfolio_runlock")
    assert f"an update is running (update held by test, pid {os.getpid()}" in message

    assert seed.state() == seed.initial
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no partial file left


@pytest.mark.slow
def test_a_forced_restore_keeps_the_replaced_content_and_restores_the_backup(
    seed, new_site, tmp_path
):
    target = new_site("target")
    target.call("run_update", "--no-prices", "--as-of", "1990-03-30")
    replaced = target.state()
    assert replaced["books"] != seed.initial["books"]
    session = None
    if POSTGRES:  # a web process still connected: its session is ended, not waited for
        import psycopg

        session = psycopg.connect(target.env["DATABASE_URL"], autocommit=True)
        session.execute("SELECT 1")
    out = target.call("restore", "--force", str(seed.backup))
    if session is not None:
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
        session.close()
    [kept] = [line.rsplit(" ", 1)[1] for line in out.splitlines() if "is kept in" in line]
    assert target.state() == seed.initial

    aside = Site(tmp_path / "aside", create=False)  # a site reading the kept content
    if POSTGRES:
        url = urllib.parse.urlsplit(target.env["DATABASE_URL"])._replace(path="/" + kept)
        aside.env["DATABASE_URL"] = url.geturl()
    else:
        aside.data_dir.mkdir()
        Path(kept).rename(aside.sqlite_path)
    assert aside.state() == replaced


def test_a_swap_that_fails_midway_leaves_the_live_sqlite_file_as_it_was(tmp_path):
    live, new = tmp_path / "live.sqlite3", tmp_path / "new.sqlite3"
    with sqlite3.connect(live) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE book (equity REAL)")
        db.execute("INSERT INTO book VALUES (100000.0)")
    with sqlite3.connect(new) as db:
        db.execute("CREATE TABLE book (equity REAL)")
        db.executemany("INSERT INTO book VALUES (?)", [(float(i),) for i in range(20_000)])
        db.execute("CREATE TABLE blob (b BLOB)")
        db.executemany("INSERT INTO blob VALUES (?)", [(os.urandom(400),) for _ in range(2000)])

    steps = []

    def fail_on_third_step(status, remaining, total):
        steps.append(remaining)
        if len(steps) == 3:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        sqlite_swap(new, live, pages=16, progress=fail_on_third_step)
    assert steps[-1] > 0  # it failed with pages still to copy
    reader = sqlite3.connect(live)
    assert reader.execute("SELECT equity FROM book").fetchall() == [(100000.0,)]
    assert reader.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    sqlite_swap(new, live)  # and the same swap, uninterrupted, replaces it whole
    assert reader.execute("SELECT COUNT(*) FROM book").fetchone() == (20_000,)
    reader.close()


def test_a_copy_of_a_file_that_is_not_a_database_names_it(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"SQLite format 3\x00" + os.urandom(5000))
    with pytest.raises(BackupError, match=f"{junk}: not a readable SQLite database"):
        sqlite_copy(junk, tmp_path / "copy", readonly=True)
