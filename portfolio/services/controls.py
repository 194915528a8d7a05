"""Operator controls on a portfolio's configuration, shared by every surface (the
configuration page, the admin, the API): each validates with the same engine validators as
the YAML load, changes everything or nothing (one transaction) and records one audit row
(``ConfigChange``) per changed field with who, from where and the values before and after.
Each audit row also touches the portfolio's live state version (``state_touch``, once per
transaction), so the open pages show the change at once.

A bad value raises ``ConfigError`` naming the field and the rule; nothing is written then.
The update path reads a strategy's status when it loads the book for a run, so a pause or
an edit made between runs takes effect from the next bar applied, never the current one."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from portfolio.engine.checks import ConfigChecker
from portfolio.engine.config_schema import (
    STRATEGY_NAME,
    allocation_sum_error,
    rebalancing_from_config,
)
from portfolio.engine.errors import ConfigError
from portfolio.engine.signals import signal_from_config
from portfolio.engine.sizing import risk_config_from_dict
from portfolio.models import ConfigChange, Portfolio, Strategy
from portfolio.services.live import state_touch

SOURCES = ("page", "admin", "api", "yaml", "risk")


@dataclass(frozen=True)
class Origin:
    """Who makes a change and from where (``ip`` when there is a request)."""

    actor: str
    source: str
    ip: str | None = None

    @classmethod
    def of_request(cls, request, *, source: str) -> Origin:
        """The logged-in user of ``request`` on surface ``source`` (page, admin, api)."""
        return cls(
            actor=request.user.get_username(), source=source, ip=request.META.get("REMOTE_ADDR")
        )


def _plain(value: Any) -> Any:
    """A JSON-storable value (Decimals as floats, rows as their id) for the audit row."""
    if hasattr(value, "pk"):
        return value.pk
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return float(value) if isinstance(value, Decimal) else value


def config_change_record(
    *, obj, portfolio: Portfolio | None, field: str, before: Any, after: Any, origin: Origin
) -> ConfigChange | None:
    """One audit row, written only when the value changed; the portfolio's open pages are
    told after commit (one state version per transaction, not per row)."""
    before, after = _plain(before), _plain(after)
    if before == after:
        return None
    masked = getattr(obj, "audit_value", None)  # a model holding secrets records them masked
    if masked is not None:
        before, after = masked(field, before), masked(field, after)
    if portfolio is not None:
        state_touch(portfolio)
    return ConfigChange.objects.create(
        portfolio=portfolio,
        actor=origin.actor[:150],
        source=origin.source,
        client_ip=origin.ip,
        # the bar it takes effect after (the recent-activity feed dates it by the next bar)
        applies_after=portfolio.last_applied_date if portfolio is not None else None,
        object_type=type(obj).__name__,
        object_repr=str(getattr(obj, "name", obj))[:200],
        field=field,
        before=before,
        after=after,
    )


def config_save(*, obj, values: dict[str, Any], portfolio: Portfolio | None, origin: Origin):
    """Set ``values`` on ``obj``, save those fields and record each change (call inside a
    transaction; the caller has validated)."""
    changed = []
    for field, value in values.items():
        before = getattr(obj, field)
        setattr(obj, field, value)
        if config_change_record(
            obj=obj, portfolio=portfolio, field=field, before=before, after=value, origin=origin
        ):
            changed.append(field)
    if changed:
        obj.save(update_fields=changed)
    return changed


def strategy_values_check(*, strategy: Strategy, values: dict[str, Any]) -> None:
    """Raise ``ConfigError`` when an edit of ``strategy`` breaks a rule of the YAML:
    parameters by the signal's own checks, risk_config by the sizing rules, status one of
    the two, approval_required a bool, and the static allocations still summing to the
    leverage target."""
    where = f"strategy {strategy.name}"
    signal_type = values.get("signal_type", strategy.signal_type)
    if "parameters" in values or "signal_type" in values:
        params = values.get("parameters", strategy.parameters)
        if not isinstance(params, dict):
            raise ConfigError(f"{where}.parameters", "must be a mapping")
        signal_from_config(signal_type, params, where=where)
    if "risk_config" in values:
        risk_config_from_dict(values["risk_config"] or {}, where=f"{where}.risk_config")
    if "approval_required" in values and not isinstance(values["approval_required"], bool):
        raise ConfigError(f"{where}.approval_required", "must be true or false")
    if "status" in values and values["status"] not in Strategy.Status.values:
        raise ConfigError(f"{where}.status", "must be active or paused")
    if strategy.retired_at is not None and values.get("status") == Strategy.Status.ACTIVE:
        raise ConfigError(f"{where}.status", "a retired strategy stays paused")
    if "target_allocation" in values:
        allocation = float(values["target_allocation"])
        if allocation < 0:
            raise ConfigError(f"{where}.target_allocation", "must be >= 0")
        others = Strategy.objects.filter(portfolio_id=strategy.portfolio_id).exclude(pk=strategy.pk)
        allocations = [float(a) for a in others.values_list("target_allocation", flat=True)]
        _allocation_sum_check(
            strategy.portfolio, [*allocations, allocation], f"{where}.target_allocation"
        )


def _allocation_sum_check(portfolio: Portfolio, allocations: list[float], where: str) -> None:
    # stored with 6 decimals: compare at that precision
    error = allocation_sum_error(allocations, float(portfolio.leverage_target), tolerance=1e-6)
    if error:
        raise ConfigError(where, error)


def strategy_update(*, strategy: Strategy, values: dict[str, Any], origin: Origin) -> list[str]:
    """Validate and apply an edit of one strategy's configuration; the changed fields."""
    with transaction.atomic():
        Portfolio.objects.select_for_update().get(pk=strategy.portfolio_id)
        strategy_values_check(strategy=strategy, values=values)
        return config_save(obj=strategy, values=values, portfolio=strategy.portfolio, origin=origin)


def strategy_pause(*, strategy: Strategy, origin: Origin) -> bool:
    """An operator pause: the strategy places no orders from the next bar (its holdings
    are kept). False when it was already paused. Resume with
    ``risk.services.strategy_resume`` (it also clears the risk manager's pause)."""
    strategy.refresh_from_db()
    if strategy.status == Strategy.Status.PAUSED:
        return False
    return bool(
        strategy_update(strategy=strategy, values={"status": Strategy.Status.PAUSED}, origin=origin)
    )


def strategy_allocations_set(
    *, portfolio: Portfolio, allocations: dict[str, float], origin: Origin
) -> list[str]:
    """Set the static target allocations of the portfolio's strategies at once (names not
    given keep theirs); the whole set must sum to the leverage target. Returns the names
    whose allocation changed."""
    with transaction.atomic():
        portfolio = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
        strategies = {s.name: s for s in portfolio.strategies.all()}
        unknown = sorted(set(allocations) - set(strategies))
        if unknown:
            raise ConfigError(f"allocations.{unknown[0]}", "is not a strategy of the portfolio")
        new = {n: float(allocations.get(n, s.target_allocation)) for n, s in strategies.items()}
        for name, value in new.items():
            if not value >= 0:
                raise ConfigError(f"strategy {name}.target_allocation", "must be >= 0")
        _allocation_sum_check(portfolio, list(new.values()), "allocations")
        changed = []
        for name, s in strategies.items():
            value = Decimal(str(round(new[name], 6)))
            if config_save(
                obj=s, values={"target_allocation": value}, portfolio=portfolio, origin=origin
            ):
                changed.append(name)
        return changed


def config_form_save(*, obj, fields: list[str], portfolio_of, origin: Origin) -> None:
    """Save an object a form has already validated and filled in (the admin), recording
    each of ``fields`` whose stored value differs; ``portfolio_of(obj)`` gives the
    portfolio of the audit row. A new object is recorded field by field from None.

    An existing object is saved with ``update_fields`` limited to the fields the operator
    changed: a full save would write back every other column as the form loaded it, so
    an update chunk committed between loading and submitting the form (a strategy's
    cash, P&L and targets, a portfolio's last applied date) would be silently undone.
    The row is locked for the before/after read so the audit row describes the write."""
    with transaction.atomic():
        if obj.pk is None:
            old = None
            obj.save()
        else:
            old = type(obj).objects.select_for_update().filter(pk=obj.pk).first()
            columns = {f.name for f in obj._meta.concrete_fields if not f.primary_key}
            changed = [f for f in fields if f in columns]
            if changed:
                obj.save(update_fields=changed)
        portfolio = portfolio_of(obj)
        for field in fields:
            config_change_record(
                obj=obj,
                portfolio=portfolio,
                field=field,
                before=getattr(old, field) if old is not None else None,
                after=getattr(obj, field),
                origin=origin,
            )


def portfolio_rebalancing_set(
    *, portfolio: Portfolio, rule: dict[str, Any], origin: Origin
) -> list[str]:
    """Change the rebalancing rule (the YAML's ``portfolio.rebalancing`` keys: method,
    frequency, threshold, trading_day, execution; keys not given keep their value),
    checked by the YAML's rules; the changed fields."""
    current = {
        "method": portfolio.rebalance_trigger,
        "frequency": portfolio.rebalance_frequency,
        "threshold": _plain(portfolio.rebalance_threshold),
        "trading_day": portfolio.rebalance_trading_day,
        "execution": portfolio.rebalance_method,
    }
    checker = ConfigChecker(origin.source)
    reb = checker.mapping({**current, **rule}, "portfolio.rebalancing", set(current))
    values = rebalancing_from_config(checker, reb)
    values["rebalance_method"] = values.pop("rebalance_execution")
    values["rebalance_threshold"] = Decimal(str(values["rebalance_threshold"]))
    with transaction.atomic():
        portfolio = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
        return config_save(obj=portfolio, values=values, portfolio=portfolio, origin=origin)


def strategy_add(
    *,
    portfolio: Portfolio,
    name: str,
    signal_type: str,
    parameters: dict[str, Any],
    risk_config: dict[str, Any],
    origin: Origin,
) -> Strategy:
    """Add a strategy of a registered signal type with checked parameters. Like one the
    YAML adds, it joins the book at the next bar with no capital (target allocation 0,
    so the static set still sums to the leverage target) until the operator gives it an
    allocation and a rebalance funds it."""
    where = f"strategy {name}"
    if not STRATEGY_NAME.match(name or ""):
        raise ConfigError(f"{where}.name", "use letters, digits, '_', '-' or '.' (at most 100)")
    if not isinstance(parameters, dict):
        raise ConfigError(f"{where}.parameters", "must be a mapping")
    signal_from_config(signal_type, parameters, where=where)
    risk_config_from_dict(risk_config or {}, where=f"{where}.risk_config")
    with transaction.atomic():
        portfolio = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
        if portfolio.strategies.filter(name=name).exists():
            raise ConfigError(f"{where}.name", "is already a strategy of the portfolio")
        order = portfolio.strategies.count()
        strategy = Strategy.objects.create(
            portfolio=portfolio,
            name=name,
            signal_type=signal_type,
            parameters=parameters,
            risk_config=risk_config or {},
            target_allocation=Decimal("0"),
            position_order=order,
        )
        for field in ("signal_type", "parameters", "risk_config", "target_allocation", "status"):
            config_change_record(
                obj=strategy,
                portfolio=portfolio,
                field=field,
                before=None,
                after=getattr(strategy, field),
                origin=origin,
            )
    return strategy


def strategy_retire(*, strategy: Strategy, allocations: dict[str, float], origin: Origin) -> None:
    """Retire a strategy: paused for good with allocation 0 and ``retired_at`` set, its
    trades and snapshots kept. ``allocations`` gives the other strategies' new targets so
    the set still sums to the leverage target (checked as one set)."""
    if strategy.retired_at is not None:
        raise ConfigError(f"strategy {strategy.name}", "is already retired")
    with transaction.atomic():
        strategy_allocations_set(
            portfolio=strategy.portfolio,
            allocations={**allocations, strategy.name: 0.0},
            origin=origin,
        )
        strategy.refresh_from_db()
        config_save(
            obj=strategy,
            values={"status": Strategy.Status.PAUSED, "retired_at": timezone.now()},
            portfolio=strategy.portfolio,
            origin=origin,
        )
