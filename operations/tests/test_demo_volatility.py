"""The demo (config/*.yaml over the bundled data) replayed through 1998: the risk manager's
volatility stays a plausible number. In September 1998 it used to read 8.17 (817% a year):
mean_reversion_20, paused since 1991 and still short, had had its multiplier cut to 0.0046
by seven years of strategy-leverage enforcement, so its returns divided by that multiplier
were unit returns of +13 to +19 a day, which the 60-bar window kept after the book was
refunded and resumed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from django.db.models import Max

from operations.config import portfolio_configure
from operations.update import portfolio_apply
from portfolio.feeds import BundledProvider
from portfolio.models import PortfolioSnapshot, StrategySnapshot
from portfolio.services.config import allocation_spec_read
from risk.models import Violation
from risk.services import risk_spec_read

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.django_db
def test_the_demo_volatility_through_1998_stays_below_100_percent_a_year():
    portfolio = portfolio_configure(
        spec=allocation_spec_read(ROOT / "config" / "strategy_allocation.yaml"),
        risk=risk_spec_read(ROOT / "config" / "risk_limits.yaml"),
        source="demo",
    )
    portfolio_apply(
        portfolio=portfolio, closes=BundledProvider().closes_frame(), as_of=date(1998, 12, 31)
    )
    assert PortfolioSnapshot.objects.filter(portfolio=portfolio).count() > 2000
    measured = Violation.objects.filter(portfolio=portfolio, limit__metric="volatility")
    stored = [
        PortfolioSnapshot.objects.filter(portfolio=portfolio).aggregate(v=Max("volatility"))["v"],
        StrategySnapshot.objects.filter(strategy__portfolio=portfolio).aggregate(
            v=Max("volatility")
        )["v"],
        measured.aggregate(v=Max("value"))["v"] or 0.0,
    ]
    assert max(stored) < 1.0, stored
