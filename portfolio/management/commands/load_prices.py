from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portfolio.engine.errors import QuantsiteInputError
from portfolio.feeds import ProviderError, provider_for
from portfolio.management.commands._common import parse_date, split_tickers
from portfolio.services.prices import price_file_max_bytes, prices_load
from quantsite.progress import Progress


class Command(BaseCommand):
    help = (
        "Load prices from a provider (bundled, csv, yfinance). Files are checked strictly: "
        "one bad row refuses the whole file and nothing is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", default="bundled", choices=["bundled", "csv", "yfinance"])
        parser.add_argument("--file", help="CSV file for the csv provider")
        parser.add_argument("--until", help="ignore bars after this date (YYYY-MM-DD)")
        parser.add_argument(
            "--lenient",
            action="store_true",
            help="drop or repair bad bars (recorded) instead of refusing",
        )
        parser.add_argument(
            "--add-tickers",
            default="",
            help="comma-separated new tickers the file may add as instruments "
            "(a file's other unknown tickers are refused)",
        )

    def handle(
        self, *args, provider, file=None, until=None, lenient=False, add_tickers="", **options
    ):
        if provider == "csv" and not file:
            raise CommandError("--file is required with --provider csv")
        progress = Progress(self.stdout, label="storing prices", unit="bars")
        try:
            result = prices_load(
                provider=provider_for(provider, csv_path=file, max_bytes=price_file_max_bytes()),
                strict=not lenient,
                until=parse_date(until, "--until"),
                add_tickers=split_tickers(add_tickers),
                progress=progress,
            )
        except (QuantsiteInputError, ProviderError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            progress.close()
        self.stdout.write(
            f"added {result.bars_added} bars ({result.first_date} to {result.last_date}); "
            f"{result.issues} data issues recorded"
        )
