from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.backtest import backtest_run
from portfolio.engine.errors import QuantsiteInputError
from portfolio.management.commands._common import parse_date, split_tickers
from quantsite.progress import Progress


class Command(BaseCommand):
    help = (
        "Replay history for a strategy allocation config through the live update path into a "
        "separate backtest portfolio, and print or write a JSON summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("--config", required=True, help="strategy allocation YAML")
        parser.add_argument("--data", help="CSV of prices (wide or long); default: stored prices")
        parser.add_argument("--start", help="first date to trade (YYYY-MM-DD)")
        parser.add_argument("--end", help="last date (YYYY-MM-DD)")
        parser.add_argument("--json", dest="json_out", help="write the summary to this file")
        parser.add_argument("--name", help="backtest portfolio name")
        parser.add_argument(
            "--risk", help="risk limits YAML applied as to the live book (default: no limits)"
        )
        parser.add_argument(
            "--add-tickers",
            default="",
            help="comma-separated new tickers the --data file may add as instruments",
        )

    def handle(
        self,
        *args,
        config,
        data=None,
        start=None,
        end=None,
        json_out=None,
        name=None,
        risk=None,
        add_tickers="",
        **options,
    ):
        progress = Progress(self.stdout, label="backtest: applying")
        try:
            summary = backtest_run(
                config_path=config,
                data_path=data,
                start=parse_date(start, "--start"),
                end=parse_date(end, "--end"),
                name=name,
                risk_path=risk,
                add_tickers=split_tickers(add_tickers),
                progress=progress,
            )
        except QuantsiteInputError as exc:
            raise CommandError(str(exc)) from None
        finally:
            progress.close()
        p = summary["portfolio"]
        if json_out:
            Path(json_out).write_text(json.dumps(summary, indent=1))
        lines = [
            f"backtest {p['name']!r}: {p['start']} to {p['end']}",
            f"  final equity {p['final_equity']:,.2f} (from {p['initial_capital']:,.2f})",
        ]
        for sname, s in summary["strategies"].items():
            lines.append(f"  {sname}: final equity {s['final_equity']:,.2f}")
        lines.append(f"  {len(summary['rebalances'])} rebalances, {summary['trades']} trades")
        if summary["risk_limits"] is None:
            lines.append("  no risk limits applied (pass --risk FILE to apply them)")
        else:
            opened = len(summary["violations"])
            lines.append(f"  risk limits from {summary['risk_limits']}: {opened} violations")
        if json_out:
            lines.append(f"  summary written to {json_out}")
        self.stdout.write("\n".join(lines))
