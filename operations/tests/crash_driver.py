"""What the crash-resume harness (``test_crash_resume.py``) runs in a subprocess, one
command per process, against the database its environment names:

* ``setup``: the replay configuration (``replay_setup``) with two webhook channels;
* ``update``: one ``run_update`` without loading prices, then ``DIGEST <sha256>``;
* ``digest``: only the digest line;
* ``deliver <seconds>``: ``alerts_deliver`` with the clock that many seconds ahead (a
  restart after the claim lease has lapsed) until nothing is due, then ``SENT <n>``.

Run as ``python -m operations.tests.crash_driver <command>`` from the project root."""

from __future__ import annotations

import os
import sys
from datetime import timedelta


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantsite.settings")
    import django

    django.setup()
    from django.utils import timezone

    from operations.digest import portfolio_tables, tables_digest
    from operations.tests.replay_setup import replay_configure
    from operations.update import run_update
    from portfolio.models import Portfolio
    from risk.alerts import alerts_deliver
    from risk.models import AlertChannel

    command = argv[0]
    if command == "setup":
        portfolio = replay_configure("risk_parity", hook_url=argv[1] + "/a")
        AlertChannel.objects.create(
            portfolio=portfolio, name="hook-b", kind="webhook", config={"url": argv[1] + "/b"}
        )
        return
    if command == "update":
        result = run_update(load_prices=False, trigger="crash-test")
        print("RESULT", result.status, result.dates_applied, flush=True)
    if command in ("update", "digest"):
        print("DIGEST", tables_digest(portfolio_tables(Portfolio.objects.get())), flush=True)
        return
    if command == "deliver":
        ahead, sent = timedelta(seconds=float(argv[1])), 0
        while (report := alerts_deliver(now=timezone.now() + ahead)).attempted:
            sent += report.sent
        print("SENT", sent, flush=True)
        return
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
