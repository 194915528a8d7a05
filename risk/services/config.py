"""Loading the risk limits, the alert channels and the risk manager's settings from
``risk_limits.yaml`` (validated by ``risk.engine.limits_config``)."""

from __future__ import annotations

from pathlib import Path

from portfolio.models import ConfigChange, Portfolio
from portfolio.services.config import yaml_read
from risk.engine.limits_config import RiskConfigSpec, parse_risk_config
from risk.models import AlertChannel, RiskBook, RiskLimit


def risk_spec_read(path: str | Path) -> RiskConfigSpec:
    """Read and validate a risk_limits.yaml (ConfigError naming the file, key and rule)."""
    return parse_risk_config(yaml_read(path), source=str(path))


def risk_config_apply(
    *, portfolio: Portfolio, spec: RiskConfigSpec, changes: list[ConfigChange], actor: str
) -> None:
    """Upsert the portfolio's limits and alert channels by name (inside the caller's
    transaction). Limits no longer in the file are disabled, not deleted, so the
    violations that refer to them keep their history."""
    limits = {limit.name: limit for limit in portfolio.risk_limits.all()}
    for s in spec.limits:
        limit = limits.pop(s.name, None) or RiskLimit(portfolio=portfolio, name=s.name)
        before = (
            None
            if limit.pk is None
            else {
                "threshold": limit.threshold,
                "severity": limit.severity,
                "action": limit.action,
                "enabled": limit.enabled,
            }
        )
        limit.scope, limit.metric, limit.direction = s.scope, s.metric, s.direction
        limit.threshold, limit.severity, limit.action = s.threshold, s.severity, s.action
        limit.source, limit.enabled = s.source, True
        limit.recovery_threshold = s.recovery_threshold
        limit.recovery_steps = list(s.recovery_steps)
        limit.cooldown_bars = s.cooldown_bars
        limit.group = s.group or ""
        limit.save()
        after = {
            "threshold": s.threshold,
            "severity": s.severity,
            "action": s.action,
            "enabled": True,
        }
        if before != after:
            changes.append(
                ConfigChange(
                    actor=actor,
                    source="yaml",
                    object_type="RiskLimit",
                    object_repr=s.name,
                    field="*",
                    before=before,
                    after=after,
                )
            )
    for leftover in limits.values():
        if leftover.enabled:
            leftover.enabled = False
            leftover.save(update_fields=["enabled"])
            changes.append(
                ConfigChange(
                    actor=actor,
                    source="yaml",
                    object_type="RiskLimit",
                    object_repr=leftover.name,
                    field="enabled",
                    before=True,
                    after=False,
                )
            )
    book, _ = RiskBook.objects.get_or_create(portfolio=portfolio)
    if book.window_bars != spec.window_bars:
        changes.append(
            ConfigChange(
                actor=actor,
                source="yaml",
                object_type="RiskBook",
                object_repr=str(portfolio)[:200],
                field="window_bars",
                before=book.window_bars,
                after=spec.window_bars,
            )
        )
        book.window_bars = spec.window_bars
        book.save(update_fields=["window_bars"])
    for c in spec.channels:
        config = dict(c.config)
        min_severity = config.pop("min_severity", "low")
        AlertChannel.objects.update_or_create(
            portfolio=portfolio,
            name=c.name,
            defaults={
                "kind": c.kind,
                "enabled": c.enabled,
                "config": config,
                "min_severity": min_severity,
            },
        )
