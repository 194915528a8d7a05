"""Load strategy_allocation.yaml into the database (the portfolio and its strategies).

The file is fully validated before anything is written; ``portfolio_config_apply`` writes
inside the caller's transaction (``operations.config.portfolio_configure`` loads both YAML
files in one), so a bad file changes nothing. Every changed field is recorded in the
audit trail (``ConfigChange``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from portfolio.engine.config_schema import PortfolioSpec, parse_allocation_config
from portfolio.engine.errors import ConfigError
from portfolio.models import ConfigChange, Portfolio, Strategy


def yaml_read(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error is a ConfigError naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path} line {mark.line + 1}" if mark else str(path)
        raise ConfigError(where, f"is not valid YAML ({getattr(exc, 'problem', exc)})") from None


def allocation_spec_read(path: str | Path) -> PortfolioSpec:
    return parse_allocation_config(yaml_read(path), source=str(path))


def _audit(changes: list[ConfigChange], obj, field: str, before, after, actor: str) -> None:
    if before != after:
        changes.append(
            ConfigChange(
                actor=actor,
                source="yaml",
                object_type=type(obj).__name__,
                object_repr=str(obj)[:200],
                field=field,
                before=before,
                after=after,
            )
        )


def _set(obj, field: str, value, changes, actor) -> None:
    before = getattr(obj, field)
    norm_before = float(before) if hasattr(before, "as_tuple") else before
    norm_after = float(value) if hasattr(value, "as_tuple") else value
    _audit(changes, obj, field, norm_before, norm_after, actor)
    setattr(obj, field, value)


def portfolio_config_apply(
    *,
    spec: PortfolioSpec,
    changes: list[ConfigChange],
    source: str = "",
    actor: str = "yaml",
    is_backtest: bool = False,
    name: str | None = None,
) -> Portfolio:
    """Create or update the portfolio named in ``spec`` (or ``name``) and its strategies,
    appending the audit rows to ``changes`` (the caller saves them). Raises ConfigError
    when the file asks for something the stored state forbids (removing a strategy that
    has history); the caller's transaction then changes nothing."""
    with transaction.atomic():
        portfolio, created = Portfolio.objects.get_or_create(
            name=name or spec.name,
            defaults={"initial_capital": spec.initial_capital, "is_backtest": is_backtest},
        )
        if (
            not created
            and portfolio.last_applied_date is not None
            and (float(portfolio.initial_capital) != spec.initial_capital)
        ):
            raise ConfigError(
                f"{source}: portfolio.initial_capital",
                "cannot change once the portfolio has history",
            )
        values = {
            "initial_capital": spec.initial_capital,
            "leverage_target": spec.leverage_target,
            "allocation_method": spec.allocation_method,
            "allocation_params": spec.allocation_params,
            "rebalance_trigger": spec.rebalance_trigger,
            "rebalance_frequency": spec.rebalance_frequency,
            "rebalance_threshold": spec.rebalance_threshold,
            "rebalance_method": spec.rebalance_execution,
            "rebalance_trading_day": spec.rebalance_trading_day,
            "commission_bps": spec.commission_bps,
            "slippage_bps": spec.slippage_bps,
            "whole_shares": spec.whole_shares,
            "trade_band": spec.trade_band,
            "config_source": source,
        }
        for field, value in values.items():
            _set(portfolio, field, value, changes, actor)
        portfolio.save()
        _strategies_configure(portfolio, spec, source, changes, actor)
    return portfolio


def _strategies_configure(portfolio, spec, source, changes, actor) -> None:
    existing = {s.name: s for s in portfolio.strategies.all()}
    wanted = {s.name for s in spec.strategies}
    for name, strategy in existing.items():
        if name not in wanted:
            if strategy.snapshots.exists() or strategy.trades.exists():
                raise ConfigError(
                    f"{source}: strategies",
                    f"strategy {name!r} has history and cannot be removed; set its status "
                    "to paused instead",
                )
            strategy.delete()
    for order, s in enumerate(spec.strategies):
        strategy = existing.get(s.name) or Strategy(portfolio=portfolio, name=s.name)
        values = {
            "signal_type": s.signal_type,
            "parameters": s.parameters,
            "target_allocation": s.allocation,
            "status": s.status,
            "risk_config": s.risk_config,
            "commission_bps": s.commission_bps,
            "slippage_bps": s.slippage_bps,
            "trade_band": s.trade_band,
            "approval_required": s.approval_required,
            "position_order": order,
        }
        for field, value in values.items():
            _set(strategy, field, value, changes, actor)
        strategy.save()
