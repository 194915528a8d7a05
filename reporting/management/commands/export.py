from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from quantsite.progress import Progress
from reporting import exports
from reporting.management.commands._common import (
    file_in_existing_dir,
    portfolio_or_error,
    write_atomically,
)


class Command(BaseCommand):
    help = (
        "Export a portfolio's tables (equity curves, trades, positions, risk metrics, "
        "violations) as CSV or Excel. --out is a file, or an existing directory to write "
        "quantsite-<table>-<as-of>.<format> into; --table all --format csv needs a "
        "directory (one file per table), --table all --format xlsx writes one workbook."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--table", required=True, choices=[*exports.TABLES, exports.ALL], help="what to export"
        )
        parser.add_argument("--format", dest="fmt", default="csv", choices=exports.FORMATS)
        parser.add_argument("--out", required=True, help="output file or existing directory")
        parser.add_argument("--portfolio", help="portfolio name (default: the live portfolio)")

    def handle(self, *args, table, fmt, out, portfolio=None, **options):
        out_dir = Path(out) if Path(out).is_dir() else None
        if table == exports.ALL and fmt == "csv" and out_dir is None:
            raise CommandError(
                f"--out {out}: --table all --format csv writes one file per table, so --out "
                "must be an existing directory"
            )
        target = None if out_dir else file_in_existing_dir(out, f".{fmt}")
        p = portfolio_or_error(portfolio)
        frames = exports.export_frames(p, table)
        files = (
            {name: {name: frame} for name, frame in frames.items()}
            if fmt == "csv"
            else {table: frames}
        )
        progress = Progress(self.stdout, label="export: writing", unit="files")
        progress(0, len(files))
        for i, (name, group) in enumerate(files.items(), start=1):
            filename = exports.export_filename(portfolio=p, table=name, fmt=fmt)
            path = out_dir / filename if out_dir else target
            write_atomically(path, exports.export_bytes(group, fmt))
            rows = ", ".join(f"{t} {len(f)} rows" for t, f in group.items())
            progress.close()
            self.stdout.write(f"wrote {path} ({rows})")
            progress(i, len(files))
