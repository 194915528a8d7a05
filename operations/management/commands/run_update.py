from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from operations.update import run_update
from portfolio.engine.errors import QuantsiteInputError
from portfolio.management.commands._common import parse_date


class Command(BaseCommand):
    help = "Bring prices up to date and apply every new bar date to the live portfolios."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="apply bar dates up to this date (YYYY-MM-DD)")
        parser.add_argument("--no-prices", action="store_true", help="do not pull new prices first")

    def handle(self, *args, as_of=None, no_prices=False, **options):
        try:
            result = run_update(
                as_of=parse_date(as_of, "--as-of"), trigger="command", load_prices=not no_prices
            )
        except QuantsiteInputError as exc:
            raise CommandError(str(exc)) from None
        if result.status == "skipped":
            raise CommandError(result.message)
        self.stdout.write(f"update {result.status}: {result.message}")
