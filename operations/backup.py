"""Backups of the whole database and their restore (``manage.py backup`` / ``restore``).

SQLite: ``sqlite3.Connection.backup`` in one step, i.e. inside one read transaction: in WAL
mode the writers go on while it copies, and the copy is the database as of the moment the
step began (never half of an update's chunk). PostgreSQL: ``pg_dump --format=custom``,
which reads everything inside one repeatable-read snapshot (backup_pg.py).

Nothing stored is ever lost on the way:

* a backup is written to a hidden temporary file beside ``OUT``, checked (SQLite
  ``integrity_check``, ``pg_restore --list``) and only then renamed to ``OUT``; an existing
  ``OUT`` is kept unless ``force``;
* a restore first copies the backup into a temporary database (a file beside the SQLite
  database, a new PostgreSQL database), checks it (a Quantsite database, no migration this
  code does not know) and only then swaps it in: SQLite by one backup-API transaction into
  the live file (a failure rolls it back), PostgreSQL by renaming databases. A database
  holding data is only replaced with ``force``, and then its previous content is kept
  (``<file>.before-restore-<stamp>``, database ``<name>_before_restore_<stamp>``).

A backup taken while an update ran holds that run "running" and its lock: the restored copy
marks such runs failed and drops the locks (the process they name is not running here).
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from portfolio.models import RunLock, UpdateRun
from portfolio.services.locks import pid_alive, stale_after

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
SUFFIX = {"sqlite": ".sqlite3", "postgresql": ".pgdump"}
# Tables `migrate` and `sync_schedules` fill by themselves: rows there do not make a
# database "hold data" (a freshly migrated database is empty and is restored into freely).
SETUP_TABLES = {
    "django_migrations",
    "django_content_type",
    "auth_permission",
    "django_q_schedule",
    "django_session",
    "sqlite_sequence",
}
RESTORED_RUN_ERROR = "interrupted: the database was restored from a backup taken while it ran"


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why and what to do."""


@dataclass
class Restored:
    kept: str | None = None  # where the replaced database's content is kept, if it had any
    notes: list[str] = field(default_factory=list)


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def backup_format(path: Path) -> str:
    """``sqlite`` or ``postgresql`` from the file's first bytes, else ``BackupError``."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise BackupError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BackupError(f"{path}: is a directory, not a backup file") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(
        f"{path}: wrong format: neither a SQLite database nor a pg_dump custom-format "
        "archive (the two formats `manage.py backup` writes)"
    )


def database_backup(*, out: Path, force: bool = False, pg_bin: str | None = None) -> Path:
    """Write a consistent copy of the default database to ``out`` (a file, or an existing
    directory to write ``quantsite-<stamp>.<sqlite3|pgdump>`` in); return its path."""
    db = connections["default"].settings_dict
    vendor = _vendor(db)
    if out.is_dir():
        out = out / f"quantsite-{stamp()}{SUFFIX[vendor]}"
    if out.exists() and not force:
        raise BackupError(f"{out} exists: choose another name, or --force to replace it")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent}: no such directory")
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        if vendor == "sqlite":
            live = _sqlite_path(db)
            if not live.is_file():  # sqlite3 would create an empty one and back that up
                raise BackupError(f"{live}: no such database file: nothing to back up")
            sqlite_copy(live, partial)
        else:
            from operations import backup_pg

            backup_pg.pg_dump(db, partial, pg_bin=pg_bin)
        _place(partial, out, force=force)
    finally:
        partial.unlink(missing_ok=True)
    return out


def database_restore(*, source: Path, force: bool = False, pg_bin: str | None = None) -> Restored:
    """Replace the default database by the backup ``source`` (module docstring)."""
    db = connections["default"].settings_dict
    vendor = _vendor(db)
    fmt = backup_format(source)
    if fmt != vendor:
        raise BackupError(
            f"{source}: wrong format: a {_NAMES[fmt]} backup, but this site's database is "
            f"{_NAMES[vendor]} (a backup restores into the same kind of database)"
        )
    if vendor == "sqlite":
        return _sqlite_restore(db, source, force=force)
    from operations import backup_pg

    return backup_pg.pg_restore_swap(db, source, force=force, pg_bin=pg_bin)


_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _vendor(db: dict) -> str:
    engine = db["ENGINE"]
    if engine.endswith("sqlite3"):
        return "sqlite"
    if "postgresql" in engine:
        return "postgresql"
    raise BackupError(f"unsupported database engine {engine}: SQLite or PostgreSQL only")


def _sqlite_path(db: dict) -> Path:
    name = str(db["NAME"])
    if name in ("", ":memory:") or name.startswith("file:") or "mode=memory" in name:
        raise BackupError("the SQLite database is in memory: there is no file to back up")
    return Path(name)


def _place(partial: Path, out: Path, *, force: bool) -> None:
    """Rename the finished ``partial`` to ``out``; without ``force`` never over a file that
    appeared meanwhile (a hard link fails if ``out`` exists)."""
    if force:
        os.replace(partial, out)
        return
    try:
        os.link(partial, out)
    except FileExistsError:
        raise BackupError(f"{out} exists: choose another name, or --force to replace it") from None
    except OSError:  # a file system without hard links: the check at the start stands
        os.replace(partial, out)


# --- SQLite -------------------------------------------------------------------------------


def sqlite_copy(
    source: Path, target: Path, *, page_size: int | None = None, readonly: bool = False
) -> None:
    """Copy the SQLite database ``source`` to the new file ``target``: one backup step (one
    read transaction, so a consistent snapshot while writers go on), then a standalone file
    (rollback journal, no -wal beside it) checked by ``integrity_check``. ``readonly``: a
    file that is not ours (a backup to restore) is opened without the right to change it."""
    try:
        if readonly:
            src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        else:
            src = sqlite3.connect(source, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"{source}: cannot open it as a SQLite database ({exc})") from None
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")
        if page_size and dst.execute("PRAGMA page_size").fetchone()[0] != page_size:
            # the backup API only writes into a WAL database of the same page size
            dst.execute(f"PRAGMA page_size={int(page_size)}")
            dst.execute("VACUUM")
        verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source}: not a readable SQLite database ({exc})") from None
    finally:
        dst.close()
        src.close()
    if verdict != "ok":
        raise BackupError(f"{source}: the copy fails SQLite's integrity check: {verdict}")


def _sqlite_restore(db: dict, source: Path, *, force: bool) -> Restored:
    live = _sqlite_path(db)
    result = Restored()
    exists = live.exists() and live.stat().st_size > 0
    has_data = False
    if exists:  # refuse before copying anything
        with database_alias() as alias:
            database_check_replaceable(alias, force=force)
            has_data = database_has_data(alias)
    temp = live.parent / f".{live.name}.restoring-{os.getpid()}"
    try:
        page_size = _sqlite_page_size(live) if exists else None
        sqlite_copy(source, temp, page_size=page_size, readonly=True)
        with database_alias(NAME=str(temp)) as alias:
            result.notes += restored_prepare(alias, source)
        connections.close_all()
        if has_data:
            kept = live.parent / f"{live.name}.before-restore-{stamp()}"
            sqlite_copy(live, kept)
            result.kept = str(kept)
        sqlite_swap(temp, live)
    finally:
        for leftover in (temp, *(temp.with_name(temp.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
    return result


def _sqlite_page_size(path: Path) -> int:
    db = sqlite3.connect(path, timeout=30)
    try:
        return db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()


def sqlite_swap(temp: Path, live: Path, *, pages: int = 4096, progress=None) -> None:
    """Write ``temp`` over ``live`` through the backup API: one write transaction on
    ``live`` (it waits for a writer to finish; a failure, even after some steps, rolls
    back and leaves ``live`` as it was); other connections see the new content after it."""
    src = sqlite3.connect(temp)
    dst = sqlite3.connect(live, timeout=30)
    try:
        src.backup(dst, pages=pages, progress=progress)
    finally:
        dst.close()
        src.close()


# --- shared by both engines ---------------------------------------------------------------


@contextmanager
def database_alias(**overrides) -> Iterator[str]:
    """A temporary connection alias: the default database's settings with ``overrides``
    (another NAME: the restore's temporary database), closed and forgotten after."""
    alias = f"backup_{uuid4().hex[:8]}"
    connections.databases[alias] = {**connections["default"].settings_dict, **overrides}
    try:
        yield alias
    finally:
        if alias in connections:  # never opened: nothing to close
            connections[alias].close()
            del connections[alias]
        del connections.databases[alias]


def database_has_data(alias: str) -> bool:
    """Any row outside the tables ``migrate`` fills by itself (``SETUP_TABLES``)."""
    conn = connections[alias]
    with conn.cursor() as cursor:
        tables = set(conn.introspection.table_names(cursor)) - SETUP_TABLES
        for table in sorted(tables):
            cursor.execute(f"SELECT 1 FROM {conn.ops.quote_name(table)} LIMIT 1")
            if cursor.fetchone():
                return True
    return False


def database_check_replaceable(alias: str, *, force: bool) -> None:
    """An update running against the database would go on writing the old book's state
    over the restored one: refuse while a live process holds a run lock."""
    conn = connections[alias]
    with conn.cursor() as cursor:
        if RunLock._meta.db_table not in conn.introspection.table_names(cursor):
            return
    for lock in RunLock.objects.using(alias).all():
        dead = lock.host == socket.gethostname() and not pid_alive(lock.pid)
        if not dead and timezone.now() - lock.heartbeat_at <= stale_after():
            raise BackupError(
                f"an update is running ({lock}, pid {lock.pid} on {lock.host}): stop the "
                "worker(s) and the web server before a restore"
            )
    if not force and database_has_data(alias):
        raise BackupError(
            "the database holds data: --force to replace it (its content is kept aside "
            "first, and the message names where)"
        )


def restored_prepare(alias: str, source: Path) -> list[str]:
    """Check the restored copy under ``alias`` and tidy what no longer holds there: runs
    in flight at backup time are failed, their locks dropped. Returns notes to print."""
    conn = connections[alias]
    loader = MigrationLoader(conn, ignore_no_migrations=True)
    applied = set(loader.applied_migrations)
    if not applied:
        raise BackupError(f"{source}: not a Quantsite database (no applied migrations)")
    unknown = sorted(f"{app}.{name}" for app, name in applied - set(loader.graph.nodes))
    if unknown:
        raise BackupError(
            f"{source}: made by a newer Quantsite (migrations this code does not have: "
            f"{', '.join(unknown[:5])}): upgrade the code first, then restore"
        )
    notes = []
    pending = set(loader.graph.leaf_nodes()) - applied
    if pending:
        notes.append("the backup predates this code's schema: run `manage.py migrate` next")
        return notes  # the models below may not match the old tables yet
    failed = UpdateRun.objects.using(alias).filter(status__in=UpdateRun.IN_FLIGHT)
    count = failed.update(
        status=UpdateRun.Status.FAILED, error=RESTORED_RUN_ERROR, finished_at=timezone.now()
    )
    RunLock.objects.using(alias).all().delete()
    if count:
        notes.append(f"{count} update run(s) in flight at backup time marked failed")
    return notes
