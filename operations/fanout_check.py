"""``python -m operations.fanout_check``: the scale-out check against a real cluster.

Run in a process of its own beside a ``manage.py qcluster`` on the same database and
broker (``operations.tests.test_fanout`` starts both): loads the bundled bars up to a
date, applies the demo book with ``config/risk_limits.yaml`` in process, then again
through ``run_update`` with the fan-out on, and prints one JSON line with both digests,
the fan-out groups and the timings.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantsite.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from operations.config import portfolio_configure
    from operations.digest import portfolio_digest
    from operations.update import portfolio_apply, run_update
    from portfolio import selectors
    from portfolio.feeds import BundledProvider
    from portfolio.models import ConfigChange, Portfolio
    from portfolio.services.config import allocation_spec_read
    from portfolio.services.prices import prices_load
    from risk.services import risk_spec_read

    end = date.fromisoformat(argv[0]) if argv else date(1991, 6, 28)
    root = settings.BASE_DIR
    call_command("migrate", verbosity=0)
    prices_load(provider=BundledProvider(), strict=True, until=end)
    spec = allocation_spec_read(root / "config" / "strategy_allocation.yaml")
    risk = risk_spec_read(root / "config" / "risk_limits.yaml")

    def fresh() -> Portfolio:
        Portfolio.objects.all().delete()
        ConfigChange.objects.all().delete()
        return portfolio_configure(spec=spec, risk=risk, source="fanout-check")

    settings.QUANTSITE_FANOUT = "off"
    portfolio = fresh()
    t = time.perf_counter()
    portfolio_apply(portfolio=portfolio, closes=selectors.price_frame(end=end), as_of=end)
    plain_s = time.perf_counter() - t
    plain = portfolio_digest(portfolio)

    settings.QUANTSITE_FANOUT, settings.QUANTSITE_FANOUT_MIN_STRATEGIES = "2", 2
    portfolio = fresh()
    t = time.perf_counter()
    result = run_update(as_of=end, load_prices=False, trigger="fanout-check")
    fanout_s = time.perf_counter() - t
    portfolio.refresh_from_db()
    out = {
        "plain": plain,
        "fanout": portfolio_digest(portfolio),
        "status": result.status,
        "dates": result.dates_applied,
        "plain_s": plain_s,
        "fanout_s": fanout_s,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
