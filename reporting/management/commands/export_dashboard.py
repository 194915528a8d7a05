from __future__ import annotations

from django.core.management.base import BaseCommand

from reporting.management.commands._common import (
    file_in_existing_dir,
    portfolio_or_error,
    write_atomically,
)
from reporting.static_report import TABS, report_html


class Command(BaseCommand):
    help = (
        "Write the dashboard as ONE self-contained HTML file that opens offline (Plotly.js "
        f"and CSS inlined): {', '.join(TABS)}."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", metavar="OUT.html", help="the file to write (.html)")
        parser.add_argument("--portfolio", help="portfolio name (default: the live portfolio)")

    def handle(self, *args, out, portfolio=None, **options):
        path = file_in_existing_dir(out, ".html", "OUT.html")
        p = portfolio_or_error(portfolio)
        html = report_html(p)
        write_atomically(path, html.encode("utf-8"))
        self.stdout.write(f"wrote {path} ({len(html) / 1e6:.1f} MB) for {p.name!r}")
