"""Stress windows and shocks edited on the /scenarios/ page (the admin edits the same rows
through ``AuditedAdmin``): each write is checked by the model's rules and recorded in the
audit trail (``ConfigChange``, global: no portfolio) in one transaction."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction

from portfolio.services.controls import Origin, config_change_record
from risk.models import ShockScenario, StressWindow


class ScenarioConfigError(ValueError):
    """A refused edit: ``field`` and the rule; nothing was written."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


def _checked(obj) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        name = "window" if field == "__all__" else field
        raise ScenarioConfigError(name, "; ".join(messages)) from None


def _save(obj, values: dict, origin: Origin) -> None:
    new = obj.pk is None
    before = {k: None if new else getattr(obj, k) for k in values}
    for k, v in values.items():
        setattr(obj, k, v)
    _checked(obj)
    with transaction.atomic():
        obj.save()
        for k, v in values.items():
            config_change_record(
                obj=obj, portfolio=None, field=k, before=before[k], after=v, origin=origin
            )


def stress_window_save(
    *,
    window: StressWindow | None,
    name: str,
    start: date,
    end: date,
    description: str = "",
    enabled: bool = True,
    origin: Origin,
) -> StressWindow:
    """Create (``window`` None) or change a stress window."""
    if end < start:
        raise ScenarioConfigError("end", f"{end} is before the start {start}")
    obj = window or StressWindow()
    values = {"name": name.strip(), "start": start, "end": end}
    values |= {"description": description.strip(), "enabled": enabled}
    _save(obj, values, origin)
    return obj


def shock_save(
    *,
    shock: ShockScenario | None,
    name: str,
    market: float,
    sectors: dict,
    tickers: dict,
    enabled: bool = True,
    origin: Origin,
) -> ShockScenario:
    """Create (``shock`` None) or change a hypothetical shock."""
    obj = shock or ShockScenario()
    values = {"name": name.strip(), "market": market, "sectors": sectors, "tickers": tickers}
    _save(obj, values | {"enabled": enabled}, origin)
    return obj


def scenario_config_delete(*, obj: StressWindow | ShockScenario, origin: Origin) -> None:
    """Delete a window or shock, recording it (its stored results stay)."""
    with transaction.atomic():
        config_change_record(
            obj=obj, portfolio=None, field="deleted", before=False, after=True, origin=origin
        )
        obj.delete()
