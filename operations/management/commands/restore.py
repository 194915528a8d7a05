"""``manage.py restore IN``: replace the database by a backup (operations/backup.py)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.backup import BackupError, database_restore


class Command(BaseCommand):
    help = (
        "Replace the database by a backup written by `manage.py backup`. The backup is "
        "restored into a temporary database and checked first; a failure leaves the current "
        "database as it was. A database holding data is replaced only with --force, and its "
        "content is kept aside first. Stop the web server and the workers before."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", metavar="IN", help="backup file")
        parser.add_argument(
            "--force", action="store_true", help="replace a database that holds data"
        )
        parser.add_argument("--pg-bin", help="directory of pg_restore (default: PATH)")

    def handle(self, *args, source, force=False, pg_bin=None, **options):
        try:
            result = database_restore(source=Path(source), force=force, pg_bin=pg_bin)
        except BackupError as exc:
            raise CommandError(f"restore refused, nothing changed: {exc}") from None
        self.stdout.write(f"restored from {source}")
        if result.kept:
            self.stdout.write(f"the replaced database's content is kept in {result.kept}")
        for note in result.notes:
            self.stdout.write(f"note: {note}")
