"""Risk services. Loading limits and alert channels from config; evaluation and actions
arrive with the risk-manager issue."""

from __future__ import annotations

from portfolio.models import ConfigChange, Portfolio
from risk.engine.limits_config import RiskConfigSpec
from risk.models import AlertChannel, RiskLimit


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
