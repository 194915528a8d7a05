"""``manage.py montecarlo``: project the live portfolio forward by block bootstrap."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from reporting.management.commands._common import (
    file_in_existing_dir,
    portfolio_or_error,
    write_atomically,
)
from risk.models import ScenarioRun
from risk.services.projections import ParamsError, montecarlo_record


class Command(BaseCommand):
    help = (
        "Monte Carlo projection of the live portfolio: a stationary block bootstrap of the "
        "strategies' joint daily returns (mean block length --block bars), --paths paths "
        "over --horizon bars from today's equity and weights, seeded. Prints the "
        "probability of breaching the portfolio drawdown limit and the quantiles of "
        "terminal value and max drawdown; stores the result for the /scenarios/ page; "
        "--json also writes it to a file."
    )

    def add_arguments(self, parser):
        parser.add_argument("--paths", type=int, default=10_000)
        parser.add_argument("--horizon", type=int, default=252, help="bars ahead")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--block", type=int, default=21, help="mean block length, bars")
        parser.add_argument("--portfolio", help="portfolio name (default: the live portfolio)")
        parser.add_argument("--json", dest="json_out", help="write the result to this .json file")

    def handle(self, *args, paths, horizon, seed, block, portfolio=None, json_out=None, **opts):
        target = file_in_existing_dir(json_out, ".json", "--json") if json_out else None
        p = portfolio_or_error(portfolio)
        params = {"paths": paths, "horizon": horizon, "seed": seed, "block": block}
        try:
            run = montecarlo_record(portfolio=p, params=params, trigger="command")
        except ParamsError as exc:
            raise CommandError(f"--{exc.field}: {exc.rule}") from None
        if run.status == ScenarioRun.Status.FAILED:
            raise CommandError(run.error)
        r = run.result
        breach = r["p_breach_drawdown"]
        limit = r.get("drawdown_limit")
        self.stdout.write(
            f"{p.name} as of {r['as_of']}: {run.name}, {r['return_rows']} bars of returns "
            f"({run.seconds:.2f} s)"
        )
        if breach is None:
            self.stdout.write("  no portfolio drawdown limit: no breach probability")
        else:
            self.stdout.write(
                f"  P(drawdown below {limit:.0%}) = {breach:.2%} +- {r['p_breach_stderr']:.2%}"
            )
        tv, dd = r["terminal_value"], r["max_drawdown"]
        self.stdout.write(
            f"  terminal value 5/50/95 %: {tv['p5']:,.0f} / {tv['p50']:,.0f} / {tv['p95']:,.0f}"
        )
        self.stdout.write(
            f"  max drawdown 5/50/95 %: {dd['p5']:.1%} / {dd['p50']:.1%} / {dd['p95']:.1%}"
        )
        if target is not None:
            write_atomically(target, json.dumps(r, indent=1, allow_nan=False).encode())
            self.stdout.write(f"wrote {target}")
