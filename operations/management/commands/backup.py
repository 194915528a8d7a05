"""``manage.py backup OUT``: a consistent copy of the whole database (operations/backup.py)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.backup import BackupError, database_backup


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the database to OUT while the site runs: SQLite through "
        "its online backup API, PostgreSQL through pg_dump --format=custom. OUT is a file, or "
        "an existing directory to write quantsite-<UTC stamp>.<sqlite3|pgdump> in."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", help="backup file to write, or an existing directory")
        parser.add_argument("--force", action="store_true", help="replace an existing OUT")
        parser.add_argument("--pg-bin", help="directory of pg_dump/pg_restore (default: PATH)")

    def handle(self, *args, out, force=False, pg_bin=None, **options):
        try:
            written = database_backup(out=Path(out), force=force, pg_bin=pg_bin)
        except BackupError as exc:
            raise CommandError(f"backup refused: {exc}") from None
        self.stdout.write(f"backup written: {written} ({written.stat().st_size} bytes)")
