"""Operator controls owned by the risk app: edit a limit or an alert channel (the same
rules as config/risk_limits.yaml) and acknowledge a violation. Audit rows go through the portfolio
app's one mechanism (``portfolio.services.controls``)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from portfolio.engine.errors import ConfigError
from portfolio.services.controls import Origin, config_save
from portfolio.services.live import state_touch
from risk.engine.channel_rules import channel_config_problem
from risk.engine.limits_config import SEVERITIES, limit_check
from risk.models import AlertChannel, RiskLimit, Violation

_CHECKED = ("scope", "metric", "direction", "threshold", "severity", "action")


def risk_limit_update(*, limit: RiskLimit, values: dict[str, Any], origin: Origin) -> list[str]:
    """Validate and apply an edit of one limit; the changed fields."""
    merged = {k: values.get(k, getattr(limit, k)) for k in _CHECKED}
    errors = limit_check(**merged)
    if errors:
        field, rule = next(iter(errors.items()))
        raise ConfigError(f"limit {limit.name}.{field}", rule)
    with transaction.atomic():
        return config_save(obj=limit, values=values, portfolio=limit.portfolio, origin=origin)


MAX_NOTE_CHARS = 2000


def violation_acknowledge(*, violation: Violation, note: str, origin: Origin) -> bool:
    """A human acknowledges a violation with a note (the only human action on one; its
    status stays the risk manager's). False when already acknowledged."""
    if not note.strip():
        raise ConfigError("note", "an acknowledgement needs a note")
    if len(note) > MAX_NOTE_CHARS:  # the API's limit, for the page's form too
        raise ConfigError("note", f"must be at most {MAX_NOTE_CHARS} characters")
    with transaction.atomic():
        violation = Violation.objects.select_for_update().get(pk=violation.pk)
        if violation.acknowledged_at is not None:
            return False
        violation.acknowledged_at = timezone.now()
        violation.acknowledged_by = origin.actor[:150]
        violation.acknowledged_note = note.strip()
        violation.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledged_note"])
        state_touch(violation.portfolio)  # the open pages drop it from the unacknowledged
    return True


def alert_channel_update(*, channel: AlertChannel, values: dict[str, Any], origin: Origin):
    """Enable/disable a channel or change its severity floor (the YAML's rules); the
    changed fields."""
    unknown = sorted(set(values) - {"enabled", "min_severity"})
    if unknown:
        raise ConfigError(f"channel {channel.name}.{unknown[0]}", "cannot be edited here")
    severity = values.get("min_severity", channel.min_severity)
    if severity not in SEVERITIES:
        raise ConfigError(
            f"channel {channel.name}.min_severity", f"must be one of {', '.join(SEVERITIES)}"
        )
    enabled = values.get("enabled", channel.enabled)
    if problem := channel_config_problem(channel.kind, channel.config, enabled=enabled):
        # enabling a template the YAML left disabled (no URL yet, say) is refused here too
        raise ConfigError(f"channel {channel.name}.config.{problem[0]}", problem[1])
    with transaction.atomic():
        return config_save(obj=channel, values=values, portfolio=channel.portfolio, origin=origin)
