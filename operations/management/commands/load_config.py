from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from operations.config import portfolio_configure
from portfolio.engine.errors import QuantsiteInputError
from portfolio.services.config import allocation_spec_read
from risk.services import risk_spec_read


class Command(BaseCommand):
    help = "Load strategy_allocation.yaml (and risk_limits.yaml) into the database."

    def add_arguments(self, parser):
        parser.add_argument("--allocation", default=None, help="strategy allocation YAML")
        parser.add_argument("--risk", default=None, help="risk limits YAML ('' to skip)")

    def handle(self, *args, allocation=None, risk=None, **options):
        allocation = allocation or str(settings.QUANTSITE_CONFIG_DIR / "strategy_allocation.yaml")
        if risk is None:
            risk = str(settings.QUANTSITE_CONFIG_DIR / "risk_limits.yaml")
        try:
            spec = allocation_spec_read(allocation)
            risk_spec = risk_spec_read(risk) if risk else None
            portfolio = portfolio_configure(spec=spec, risk=risk_spec, source=allocation)
        except QuantsiteInputError as exc:
            raise CommandError(str(exc)) from None
        n = portfolio.strategies.count()
        self.stdout.write(f"loaded portfolio {portfolio.name!r} with {n} strategies")
