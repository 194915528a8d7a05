"""Loading both YAML files (the strategy allocation and the risk limits) in one go.

Both files are fully validated before anything is written, and everything is written in
one transaction with one set of audit rows: a bad file changes nothing."""

from __future__ import annotations

from django.db import transaction

from portfolio.engine.config_schema import PortfolioSpec
from portfolio.models import ConfigChange, Portfolio
from portfolio.services.config import portfolio_config_apply
from risk.engine.limits_config import RiskConfigSpec
from risk.services import risk_config_apply


def portfolio_configure(
    *,
    spec: PortfolioSpec,
    risk: RiskConfigSpec | None = None,
    source: str = "",
    actor: str = "yaml",
    is_backtest: bool = False,
    name: str | None = None,
) -> Portfolio:
    """Create or update the portfolio named in ``spec`` (or ``name``), its strategies and,
    with ``risk``, its limits, alert channels and risk settings. Raises ConfigError,
    changing nothing, when a file asks for something the stored state forbids."""
    changes: list[ConfigChange] = []
    with transaction.atomic():
        portfolio = portfolio_config_apply(
            spec=spec,
            changes=changes,
            source=source,
            actor=actor,
            is_backtest=is_backtest,
            name=name,
        )
        if risk is not None:
            risk_config_apply(portfolio=portfolio, spec=risk, changes=changes, actor=actor)
        for change in changes:
            change.portfolio = portfolio
            # a file's change takes effect at the first bar after the last applied one
            change.applies_after = portfolio.last_applied_date
        ConfigChange.objects.bulk_create(changes)
    return portfolio
