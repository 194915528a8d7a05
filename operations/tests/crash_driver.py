"""What the crash-resume harness (``test_crash_resume.py``) runs in a subprocess, one
command per process, against the database its environment names:

* ``setup``: the replay configuration (``replay_setup``) with two webhook channels;
* ``update``: one ``run_update`` without loading prices, then ``DIGEST <sha256>`` unless it
  was skipped (another process is then writing: a digest read meanwhile would be torn);
* ``digest``: only the digest line;
* ``deliver <seconds>``: ``alerts_deliver`` with the clock that many seconds ahead (a
  restart after the claim lease has lapsed) until nothing is due, then ``SENT <n>``;
* ``staff``: a superuser ``ops`` (password ``ops-password-1``), then ``TOKEN <api token>``;
* ``enqueue``: Update now's queued run, then ``RUN <id>``;
* ``task [run_id]``: the scheduled task ``run_scheduled_update``, then ``TASK <its result>``;
* ``loop <seconds>``: ``run_update`` again and again for that long, then ``LOOP <runs>
  <dates>``.

``--at <epoch>`` before the command: start it at that wall-clock time (a race's start).

Run as ``python -m operations.tests.crash_driver <command>`` from the project root."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantsite.settings")
    import django

    django.setup()
    if argv[0] == "--at":
        while time.time() < float(argv[1]):
            time.sleep(0.001)
        argv = argv[2:]
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
        if result.status == "skipped":
            return
    if command in ("update", "digest"):
        print("DIGEST", tables_digest(portfolio_tables(Portfolio.objects.get())), flush=True)
        return
    if command == "deliver":
        ahead, sent = timedelta(seconds=float(argv[1])), 0
        while (report := alerts_deliver(now=timezone.now() + ahead)).attempted:
            sent += report.sent
        print("SENT", sent, flush=True)
        return
    if command == "staff":
        from django.contrib.auth import get_user_model

        from operations.tokens import api_token_create

        user = get_user_model().objects.create_superuser("ops", password="ops-password-1")
        print("TOKEN", api_token_create(user=user).token, flush=True)
        return
    if command == "enqueue":
        from operations.runs import update_enqueue

        print("RUN", update_enqueue().run.pk, flush=True)
        return
    if command == "task":
        from operations.tasks import run_scheduled_update

        run_id = int(argv[1]) if len(argv) > 1 else None
        trigger = "manual" if run_id else "schedule"
        print("TASK", run_scheduled_update(trigger, run_id), flush=True)
        return
    if command == "loop":
        until, runs, dates = time.monotonic() + float(argv[1]), 0, 0
        while time.monotonic() < until:
            dates += run_update(trigger="loop").dates_applied
            runs += 1
        print("LOOP", runs, dates, flush=True)
        return
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
