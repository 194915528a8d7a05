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

YAML_MAX_BYTES = 1 << 20  # a configuration file is a few KiB; refuse anything absurd
YAML_MAX_ALIASES = 100  # anchors and aliases (``*x``): a few at most in a real file
YAML_MAX_DEPTH = 50  # nesting of mappings and lists


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no Python objects) that refuses what a config file never
    needs and an attacker would use: a key given twice in one mapping (PyYAML keeps the
    last silently), more than ``YAML_MAX_ALIASES`` aliases (the alias "billion laughs"),
    nesting deeper than ``YAML_MAX_DEPTH``."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > YAML_MAX_ALIASES:
                raise _Refused(
                    self.peek_event().start_mark, f"more than {YAML_MAX_ALIASES} aliases"
                )
        self._depth += 1
        try:
            if self._depth > YAML_MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark, f"nested deeper than {YAML_MAX_DEPTH}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: the base class refuses it with its own message
            if key in seen:
                raise _Refused(key_node.start_mark, f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    def __init__(self, mark, rule: str):
        super().__init__(rule)
        self.mark, self.rule = mark, rule


def yaml_read(path: str | Path) -> Any:
    """Parse a YAML configuration file with ``_StrictLoader``. Every way it can fail is
    one ConfigError naming the file (and the line where there is one) and the rule: the
    file missing or unreadable, larger than ``YAML_MAX_BYTES``, not UTF-8, not valid
    YAML, a duplicate key, too many aliases, nesting too deep."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > YAML_MAX_BYTES:
            raise ConfigError(str(path), f"is {size:,} bytes; at most {YAML_MAX_BYTES:,}")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}", "is not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        raise ConfigError(f"{path} line {exc.mark.line + 1}", exc.rule) from None
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
