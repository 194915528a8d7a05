"""``manage.py stress``: replay today's books through a window of stored history."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from reporting.management.commands._common import (
    file_in_existing_dir,
    portfolio_or_error,
    write_atomically,
)
from risk.engine.scenario_specs import MODES, window_parse
from risk.models import ScenarioRun, StressWindow
from risk.services.scenarios import stress_record


class Command(BaseCommand):
    help = (
        "Stress-test the live portfolio: replay today's positions and allocations through a "
        "window of stored prices (hold: no trading; run: the strategies trade through it "
        "with the risk manager on) and print the P&L, worst drawdown and limits that fire. "
        "Without --window every enabled stress window runs. The result is stored for the "
        "/scenarios/ page; --json also writes it to a file."
    )

    def add_arguments(self, parser):
        parser.add_argument("--window", help="START:END, ISO dates, inclusive")
        parser.add_argument("--mode", default="hold", choices=MODES)
        parser.add_argument("--portfolio", help="portfolio name (default: the live portfolio)")
        parser.add_argument("--json", dest="json_out", help="write the result to this .json file")

    def handle(self, *args, window=None, mode="hold", portfolio=None, json_out=None, **options):
        target = file_in_existing_dir(json_out, ".json", "--json") if json_out else None
        if window is not None:
            try:
                start, end = window_parse(window)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            named = StressWindow.objects.filter(start=start, end=end).first()
            windows = [(named.name if named else window, start, end)]
        else:
            windows = [(w.name, w.start, w.end) for w in StressWindow.objects.filter(enabled=True)]
            if not windows:
                raise CommandError("--window: no enabled stress window is stored; give one")
        p = portfolio_or_error(portfolio)
        results = {}
        for name, start, end in windows:
            run = stress_record(
                portfolio=p, name=name, start=start, end=end, mode=mode, trigger="command"
            )
            if run.status == ScenarioRun.Status.FAILED:
                if window is not None:
                    raise CommandError(f"--window {window}: {run.error}")
                self.stdout.write(f"{name}: {run.error}")
                continue
            results[name] = run.result
            self.stdout.write(_summary(name, run.result))
        if target is not None:
            data = next(iter(results.values())) if window is not None else {"windows": results}
            write_atomically(target, json.dumps(data, indent=1, allow_nan=False).encode())
            self.stdout.write(f"wrote {target}")


def _summary(name: str, r: dict) -> str:
    w, pf = r["window"], r["portfolio"]
    lines = [
        f"{name} [{r['mode']}] {w['base']}..{w['last']} ({w['bars']} bars): "
        f"P&L {pf['final_pnl']:,.2f} (worst {pf['worst_pnl']:,.2f}), "
        f"worst drawdown {pf['worst_drawdown']:.2%}"
    ]
    for s, v in r["strategies"].items():
        lines.append(f"  {s}: P&L {v['final_pnl']:,.2f}")
    for f in r["limits_fired"]:
        target = f" {f['target']}" if f["target"] else ""
        lines.append(f"  limit {f['name']}{target} fires on {f['first_date']}")
    if r["uncovered"]:
        lines.append(f"  held flat (no price at the window's start): {', '.join(r['uncovered'])}")
    return "\n".join(lines)
