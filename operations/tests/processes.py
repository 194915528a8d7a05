"""Real processes for the crash and concurrency tests: a database the subprocesses share
(a SQLite file, or a PostgreSQL database named after the suite's own when the suite runs
with a PostgreSQL ``DATABASE_URL``), the environment they run in, and the driver that
runs one command per process (``crash_driver``)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 10  # QUANTSITE_DATES_PER_COMMIT of every process
HOOK_PORT = 8300  # the channels' webhook receiver (test_crash_resume)


class Database:
    """One database the subprocesses use: a SQLite file or a PostgreSQL database."""

    def __init__(self, root: Path, name: str):
        self.url = os.environ.get("DATABASE_URL", "")
        self.pg = self.url.startswith("postgres")
        if self.pg:
            base = urlsplit(self.url).path.lstrip("/") or "postgres"
            self.name = f"{base}_crash_{name}"
        else:
            self.name = name
            self.path = root / f"{name}.sqlite3"

    def env(self) -> dict[str, str]:
        if self.pg:
            return {"DATABASE_URL": urlsplit(self.url)._replace(path=f"/{self.name}").geturl()}
        return {"QUANTSITE_SQLITE_PATH": str(self.path)}

    def _admin(self, sql: str) -> None:
        import psycopg

        server = urlsplit(self.url)._replace(path="/postgres").geturl()
        for _ in range(50):  # a killed client's backend may linger a moment
            try:
                with psycopg.connect(server, autocommit=True) as db:
                    db.execute(sql)
                return
            except psycopg.errors.ObjectInUse:
                time.sleep(0.2)
        raise AssertionError(f"{sql}: still in use")

    def create_from(self, template: Database | None) -> Database:
        if self.pg:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}"')
            source = f' TEMPLATE "{template.name}"' if template else ""
            self._admin(f'CREATE DATABASE "{self.name}"{source}')
        elif template is not None:
            with closing(sqlite3.connect(template.path)) as src:
                with closing(sqlite3.connect(self.path)) as dst:
                    src.backup(dst)
        return self

    def drop(self) -> None:
        if self.pg:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}"')

    def query(self, sql: str, *params) -> list[tuple]:
        if self.pg:
            import psycopg

            with psycopg.connect(self.env()["DATABASE_URL"], autocommit=True) as db:
                cursor = db.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            with db:
                return db.execute(sql.replace("%s", "?"), params).fetchall()

    def last_applied(self):
        [(value,)] = self.query("SELECT last_applied_date FROM portfolio_portfolio")
        return None if value is None else str(value)


class Site:
    """The processes' environment: a data dir (secret key), no inherited settings."""

    def __init__(self, data_dir: Path):
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL",) and not k.startswith("QUANTSITE_")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="quantsite.settings",
            QUANTSITE_DATA_DIR=str(data_dir),
            QUANTSITE_DATES_PER_COMMIT=str(CHUNK),
            QUANTSITE_ALERT_MAX_AGE_DAYS="100000",  # alert every violation
            QUANTSITE_REPLAY_BARS_PER_UPDATE="0",
            QUANTSITE_SCENARIOS_AFTER_UPDATE="0",  # tested on their own
            PYTHONUNBUFFERED="1",
        )

    def start(self, db: Database, *args: str, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "operations.tests.crash_driver", *args],
            cwd=ROOT,
            env={**self.env, **db.env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def manage(self, db: Database, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**self.env, **db.env()},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def finish(self, db: Database, *args: str, env: dict | None = None) -> str:
        out, _ = (proc := self.start(db, *args, env=env)).communicate(timeout=300)
        assert proc.returncode == 0, out
        return out


def digest_of(out: str) -> str:
    [line] = [line for line in out.splitlines() if line.startswith("DIGEST ")]
    return line.split()[1]


def wait_for(predicate, timeout: float, every: float = 0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


@dataclass
class World:
    site: Site
    template: Database
    reference: Database
    digest: str
    apply_seconds: float  # the uninterrupted replay's run, claimed to finished
    dates: list[str]  # every bar date the replay applies, in order
    rebalances: list[str]  # the dates a portfolio rebalance happened (the first excluded)
    scratch: Path
    made: list[Database] = field(default_factory=list)

    def copy(self, name: str, source: Database | None = None) -> Database:
        db = Database(self.scratch, name).create_from(source or self.template)
        self.made.append(db)
        return db
