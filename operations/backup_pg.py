"""PostgreSQL side of ``operations.backup``: ``pg_dump --format=custom`` and a restore
through a temporary database swapped in by renames.

The restore needs a role that may create, rename and drop databases and end the other
sessions on its own database (the database's owner with CREATEDB, or a superuser: the
``postgres`` user of the compose file). ``pg_dump``/``pg_restore`` must be at least the
server's major version (``--pg-bin`` points at another installation's bin directory).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.db import connections
from psycopg import sql

from operations.backup import (
    BackupError,
    Restored,
    database_alias,
    database_check_replaceable,
    database_has_data,
    restored_prepare,
    stamp,
)

# libpq's environment names for the settings Django keeps in OPTIONS (dj-database-url
# moves ?sslmode=... there); the password travels in PGPASSWORD, never on a command line.
_LIBPQ_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
MAINTENANCE_DATABASES = ("postgres", "template1")


def _tool(name: str, pg_bin: str | None) -> str:
    path = shutil.which(name, path=pg_bin) if pg_bin else shutil.which(name)
    if not path:
        where = f"in {pg_bin}" if pg_bin else "on PATH"
        raise BackupError(
            f"{name} not found {where}: install the PostgreSQL client tools of the server's "
            "major version (Debian: apt install postgresql-client), or --pg-bin DIR"
        )
    return path


def _env(db: dict) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER")):
        if db.get(key):
            env[var] = str(db[key])
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    for key, var in _LIBPQ_ENV.items():
        if key in db.get("OPTIONS", {}):
            env[var] = str(db["OPTIONS"][key])
    return env


def _run(args: list[str], db: dict, what: str) -> None:
    proc = subprocess.run(args, env=_env(db), capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
        raise BackupError(f"{what} failed: {detail}")


def pg_dump(db: dict, target: Path, *, pg_bin: str | None = None) -> None:
    """Dump the database of ``db`` to ``target`` and check the archive reads back."""
    dump = _tool("pg_dump", pg_bin)
    _run([dump, "--format=custom", f"--file={target}", f"--dbname={db['NAME']}"], db, "pg_dump")
    _run([_tool("pg_restore", pg_bin), "--list", str(target)], db, "pg_restore --list")


@contextmanager
def _maintenance(db: dict):
    """An autocommit connection to another database of the server (CREATE/ALTER/DROP
    DATABASE cannot run in the database they change)."""
    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        **{k: v for k, v in db.get("OPTIONS", {}).items() if k in _LIBPQ_ENV},
    }
    last = None
    for name in MAINTENANCE_DATABASES:
        try:
            conn = psycopg.connect(dbname=name, autocommit=True, **params)
            break
        except psycopg.OperationalError as exc:
            last = exc
    else:
        raise BackupError(f"cannot reach the PostgreSQL server: {last}")
    try:
        yield conn
    finally:
        conn.close()


def _exists(admin, name: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()


def _ddl(admin, template: str, *names: str) -> None:
    admin.execute(sql.SQL(template).format(*(sql.Identifier(n) for n in names)))


def pg_restore_swap(db: dict, source: Path, *, force: bool, pg_bin: str | None) -> Restored:
    """Restore ``source`` into a new database, check it, then rename it into place."""
    restore = _tool("pg_restore", pg_bin)
    _run([restore, "--list", str(source)], db, f"{source}: pg_restore --list")
    name = db["NAME"]
    suffix = stamp().lower()
    # within PostgreSQL's 63-byte names (it would cut longer ones silently)
    temp, old = f"{name[:36]}_restoring_{suffix}", f"{name[:31]}_before_restore_{suffix}"
    result = Restored()
    with _maintenance(db) as admin:
        exists = _exists(admin, name)
        has_data = False
        if exists:  # refuse before copying anything
            with database_alias() as alias:
                database_check_replaceable(alias, force=force)
                has_data = database_has_data(alias)
        _ddl(admin, "CREATE DATABASE {}", temp)
        try:
            _run(
                [restore, "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction",
                 f"--dbname={temp}", str(source)],
                db,
                f"{source}: pg_restore",
            )  # fmt: skip
            with database_alias(NAME=temp) as alias:
                result.notes += restored_prepare(alias, source)
        except BaseException:
            _ddl(admin, "DROP DATABASE IF EXISTS {} WITH (FORCE)", temp)
            raise
        connections.close_all()
        if exists:
            _set_aside(admin, name, old)
        try:
            _ddl(admin, "ALTER DATABASE {} RENAME TO {}", temp, name)
        except psycopg.Error:
            if exists:  # put the old one back: the site is as it was
                _ddl(admin, "ALTER DATABASE {} RENAME TO {}", old, name)
                _ddl(admin, "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true", name)
            _ddl(admin, "DROP DATABASE IF EXISTS {} WITH (FORCE)", temp)
            raise
        if exists:
            _ddl(admin, "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true", old)
            if has_data:
                result.kept = f"PostgreSQL database {old}"
            else:
                _ddl(admin, "DROP DATABASE {}", old)
    return result


def _set_aside(admin, name: str, old: str, wait_seconds: float = 10.0) -> None:
    """Rename the live database to ``old``: no new session may start, the others end
    (a running request fails; a web or worker process reconnects after the swap)."""
    _ddl(admin, "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false", name)
    deadline = time.monotonic() + wait_seconds
    while True:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        try:
            _ddl(admin, "ALTER DATABASE {} RENAME TO {}", name, old)
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                _ddl(admin, "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true", name)
                raise BackupError(
                    f"database {name} is still in use after {wait_seconds:.0f} s: stop the "
                    "web server and the workers, then restore again"
                ) from None
            time.sleep(0.2)
