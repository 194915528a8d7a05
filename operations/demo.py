"""First-run setup of the embedded demo: config, bundled prices, history, admin, schedule."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model

from operations.config import portfolio_configure
from operations.schedules import schedules_sync
from operations.update import run_update
from portfolio.feeds import BundledProvider
from portfolio.models import Portfolio, PriceBar
from portfolio.services.config import allocation_spec_read
from portfolio.services.prices import prices_load
from risk.services import risk_spec_read


@dataclass(frozen=True)
class DemoResult:
    created_portfolio: bool
    bars_added: int
    dates_applied: int
    admin_created: bool
    admin_password: str | None


def demo_setup(
    *,
    holdback_bars: int,
    admin_user: str,
    admin_password: str | None,
    bars_progress: Callable[[int, int], None] | None = None,
    dates_progress: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Idempotent: each step only does what is missing. ``holdback_bars`` of the bundled
    history are left for the scheduled updates to replay one at a time. The schedules
    are synced (``operations.schedules``) so the demo runs with a bare ``qcluster``.
    ``bars_progress`` / ``dates_progress``: the ``progress`` callables of ``prices_load``
    and ``run_update`` (bars stored, dates applied)."""
    created = False
    if not Portfolio.objects.filter(is_backtest=False).exists():
        cfg = settings.QUANTSITE_CONFIG_DIR
        spec = allocation_spec_read(cfg / "strategy_allocation.yaml")
        risk = risk_spec_read(cfg / "risk_limits.yaml")
        portfolio_configure(spec=spec, risk=risk, source=str(cfg / "strategy_allocation.yaml"))
        created = True
    bars_added = 0
    if not PriceBar.objects.exists():
        dates = BundledProvider().closes_frame().index
        until = dates[max(0, len(dates) - 1 - holdback_bars)].date()
        bars_added = prices_load(
            provider=BundledProvider(), strict=True, until=until, progress=bars_progress
        ).bars_added
    result = run_update(trigger="demo_setup", load_prices=False, progress=dates_progress)
    password, admin_created = _admin_ensure(admin_user, admin_password)
    schedules_sync()
    return DemoResult(created, bars_added, result.dates_applied, admin_created, password)


def _admin_ensure(username: str, password: str | None) -> tuple[str | None, bool]:
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        return None, False
    generated = password or secrets.token_urlsafe(12)
    User.objects.create_superuser(username=username, email="", password=generated)
    return (None if password else generated), True
