from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, OperationalError

from operations.update import run_update
from portfolio.engine.errors import QuantsiteInputError
from portfolio.feeds import ProviderError
from portfolio.management.commands._common import parse_date
from quantsite.progress import Progress


class Command(BaseCommand):
    help = "Bring prices up to date and apply every new bar date to the live portfolios."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="apply bar dates up to this date (YYYY-MM-DD)")
        parser.add_argument("--no-prices", action="store_true", help="do not pull new prices first")

    def handle(self, *args, as_of=None, no_prices=False, **options):
        # Outages are one line and exit 1, never a traceback: the run row (when the
        # database lets one be written) holds the same reason, committed chunks stay, and
        # the next run continues from the last one.
        progress = Progress(self.stdout, label="update: applying")
        try:
            result = run_update(
                as_of=parse_date(as_of, "--as-of"),
                trigger="command",
                load_prices=not no_prices,
                progress=progress,
            )
        except QuantsiteInputError as exc:
            raise CommandError(str(exc)) from None
        except ProviderError as exc:
            raise CommandError(f"update failed: price feed unavailable: {exc}") from None
        except OperationalError as exc:  # unreachable, or the connection lost mid-run
            raise CommandError(f"update failed: database unavailable: {_reason(exc)}") from None
        except DatabaseError as exc:
            raise CommandError(f"update failed: database error: {_reason(exc)}") from None
        finally:
            progress.close()
        if result.status == "skipped":
            raise CommandError(result.message)
        self.stdout.write(f"update {result.status}: {result.message}")


def _reason(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
