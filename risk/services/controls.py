"""Operator controls owned by the risk app: edit a limit or an alert channel (the same
rules as config/risk_limits.yaml), acknowledge a violation and review it (the acknowledgement
plus the configuration changes that answer it). Audit rows go through the portfolio app's one
mechanism (``portfolio.services.controls``)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from portfolio.engine.errors import ConfigError
from portfolio.models import ConfigChange
from portfolio.services.controls import Origin, config_save
from portfolio.services.live import state_touch
from risk.engine.channel_rules import channel_config_problem
from risk.engine.limits_config import limit_check
from risk.engine.severity import SEVERITIES
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
MAX_REVIEW_CHANGES = 500


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


def _note_check(note: str) -> None:
    if not note.strip():
        raise ConfigError("note", "a review needs a note")
    if len(note) > MAX_NOTE_CHARS:
        raise ConfigError("note", f"must be at most {MAX_NOTE_CHARS} characters")


def _changes_check(violation: Violation, change_ids) -> list[int]:
    """The ids as a sorted list, or ConfigError naming ``changes`` and the first bad id."""
    if isinstance(change_ids, (str, bytes, dict)) or not hasattr(change_ids, "__iter__"):
        raise ConfigError("changes", "must be a list of config change ids")
    change_ids = list(change_ids)
    if len(change_ids) > MAX_REVIEW_CHANGES:
        raise ConfigError("changes", f"must list at most {MAX_REVIEW_CHANGES} changes")
    ids = []
    for raw in change_ids:
        if isinstance(raw, bool) or not (isinstance(raw, int) or str(raw).strip().isdigit()):
            raise ConfigError("changes", f"must be config change ids, got {str(raw)[:40]!r}")
        ids.append(int(raw))
    ids = sorted(set(ids))
    found = {c.pk: c for c in ConfigChange.objects.filter(pk__in=ids)}
    for pk in ids:
        change = found.get(pk)
        if change is None:
            raise ConfigError("changes", f"config change {pk} does not exist")
        if change.portfolio_id != violation.portfolio_id:
            raise ConfigError("changes", f"config change {pk} belongs to another portfolio")
        if change.at < violation.opened_at:
            raise ConfigError("changes", f"config change {pk} was made before the violation opened")
        if change.source == "risk":
            raise ConfigError(
                "changes", f"config change {pk} is the risk manager's, not an operator's"
            )
    return ids


def violation_review(*, violation: Violation, note: str, change_ids, origin: Origin) -> bool:
    """Review a violation: acknowledge it with ``note`` and link the configuration changes
    that answer it (``review_candidates``; any other id is refused, naming ``changes``,
    and nothing changes). True for the first review; a second review amends the first and
    returns False: the note, the reviewer, the time and the linked set become the new
    ones (changes made later, after more thought, can be linked then). Like an
    acknowledgement it is not an audit row: it changes no configuration, and it records
    who and when itself."""
    _note_check(note)
    ids = _changes_check(violation, change_ids)
    with transaction.atomic():
        violation = Violation.objects.select_for_update().get(pk=violation.pk)
        first = violation.acknowledged_at is None
        violation.acknowledged_at = timezone.now()
        violation.acknowledged_by = origin.actor[:150]
        violation.acknowledged_note = note.strip()
        violation.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledged_note"])
        violation.review_changes.set(ids)
        state_touch(violation.portfolio)
    return first


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
