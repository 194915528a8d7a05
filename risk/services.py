"""Risk services: loading limits and alert channels from config, and the risk manager's
session in the update path (``risk_session_open``, registered by ``risk.apps``): it runs
``risk.engine.manager.risk_step`` at step 4 of every bar, fills the snapshots' risk
fields, and records violations, the risk state and strategy pauses in the chunk's
transaction; alerts are queued in the same transaction and sent after the commit."""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portfolio.engine.state import DayContext, PortfolioState
from portfolio.models import ConfigChange, Instrument, Portfolio, Strategy
from risk.engine.limits_config import RiskConfigSpec
from risk.engine.manager import LimitRule, OpenBreach, RiskEvent, RiskState, risk_step
from risk.engine.measures import Measures, finite_or_none
from risk.models import AlertChannel, RiskLimit, Violation


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


# --- the risk manager in the update path ----------------------------------------------

_SNAPSHOT_FIELDS = {
    "volatility": "volatility",
    "var_95": "var_95",
    "var_99": "var_99",
    "cvar_95": "cvar_95",
    "cvar_99": "cvar_99",
    "diversification_ratio": "diversification_ratio",
    "strategy_correlation": "max_correlation",
    "top5_concentration": "concentration_top5",
}
_DETAIL = (
    "net_leverage",
    "var_95_parametric",
    "var_99_parametric",
    "cvar_95_parametric",
    "cvar_99_parametric",
    "gross_leverage",
)


def limit_rules(portfolio: Portfolio, strategies) -> list[LimitRule]:
    """The portfolio's enabled limits as the engine reads them (2 queries)."""
    rules = []
    for limit in portfolio.risk_limits.filter(enabled=True).select_related(
        "strategy", "instrument"
    ):
        steps = tuple(float(x) for x in (limit.recovery_steps or ())) or (0.25, 0.5, 1.0)
        rules.append(
            LimitRule(
                id=limit.pk,
                name=limit.name,
                scope=limit.scope,
                metric=limit.metric,
                direction=limit.direction,
                threshold=limit.threshold,
                severity=limit.severity,
                action=limit.action,
                strategy=limit.strategy.name if limit.strategy else None,
                ticker=limit.instrument.ticker if limit.instrument else None,
                recovery_threshold=limit.recovery_threshold,
                recovery_steps=steps,
                cooldown_bars=limit.cooldown_bars,
            )
        )
    return rules


def risk_state_load(portfolio: Portfolio) -> RiskState:
    raw = portfolio.risk_state or {}
    state = RiskState(
        risk_peak=raw.get("risk_peak"),
        ramp=list(raw.get("ramp", [])),
        strategy_ramps={k: list(v) for k, v in raw.get("strategy_ramps", {}).items()},
        paused_by={k: (int(v[0]), v[1]) for k, v in raw.get("paused_by", {}).items()},
        strategy_peaks=dict(raw.get("strategy_peaks", {})),
    )
    for b in raw.get("open", []):
        breach = OpenBreach(
            limit_id=b["limit_id"],
            target=b["target"],
            opened_on=date.fromisoformat(b["opened_on"]),
            value=b["value"],
            action=b["action"],
            bars=b["bars"],
            violation_id=b.get("violation_id"),
        )
        state.open[(breach.limit_id, breach.target)] = breach
    return state


def risk_state_dump(risk: RiskState) -> dict:
    return {
        "risk_peak": risk.risk_peak,
        "ramp": risk.ramp,
        "strategy_ramps": risk.strategy_ramps,
        "paused_by": {k: list(v) for k, v in risk.paused_by.items()},
        "strategy_peaks": risk.strategy_peaks,
        "open": [
            {
                "limit_id": b.limit_id,
                "target": b.target,
                "opened_on": b.opened_on.isoformat(),
                "value": b.value,
                "action": b.action,
                "bars": b.bars,
                "violation_id": b.violation_id,
            }
            for b in risk.open.values()
        ],
    }


class RiskManagerSession:
    """The risk manager for one chunk of one portfolio (see portfolio.services.update)."""

    def __init__(
        self, portfolio: Portfolio, strategies, rules: list[LimitRule], alert_from: date
    ) -> None:
        from portfolio import selectors

        self.portfolio = portfolio
        self.alert_from = alert_from
        self.strategies = {s.name: s for s in strategies}
        self.rules = rules
        self.risk = risk_state_load(portfolio)
        self.multipliers = selectors.multipliers()
        self.measures: dict[date, Measures] = {}
        self.events: list[RiskEvent] = []
        self.was_active: dict[str, bool] = {}

    def hook(self, state: PortfolioState, ctx: DayContext) -> None:
        if not self.was_active:
            self.was_active = {s.name: s.active for s in state.strategies}
        measures, events = risk_step(state, ctx, self.risk, self.rules, self.multipliers)
        self.measures[ctx.day] = measures
        self.events.extend(events)

    def decorate(self, portfolio_rows: list, strategy_rows: list) -> None:
        for row in portfolio_rows:
            m = self.measures.get(row.date)
            if m is None:
                continue
            for key, field in _SNAPSHOT_FIELDS.items():
                setattr(row, field, finite_or_none(m.portfolio.get(key)))
            row.risk = {k: finite_or_none(m.portfolio.get(k)) for k in _DETAIL} | {
                "tickers": {t: round(w, 10) for t, w in m.tickers.items()},
                "correlation": m.detail.get("correlation"),
                "risk_contribution": m.detail.get("risk_contribution"),
                "correlated_var_95": m.detail.get("correlated_var_95"),
            }
        for row in strategy_rows:
            m = self.measures.get(row.date)
            if m is not None:
                row.volatility = finite_or_none(m.strategies[row.strategy.name].get("volatility"))

    def persist(self, state: PortfolioState) -> None:
        """Violations opened and resolved in this chunk, the risk state, and strategy
        statuses the manager changed (inside the chunk's transaction)."""
        opened: dict[tuple[int, str, date], Violation] = {}
        instruments = dict(Instrument.objects.values_list("ticker", "id"))
        rules = {r.id: r for r in self.rules}
        for e in self.events:
            rule = rules[e.limit_id]
            if e.kind == "opened":
                v = Violation.objects.create(
                    portfolio=self.portfolio,
                    limit_id=e.limit_id,
                    severity=e.severity,
                    strategy=self.strategies.get(e.target) if rule.scope == "strategy" else None,
                    instrument_id=instruments.get(e.target) if rule.scope == "position" else None,
                    date=e.day,
                    value=e.value,
                    threshold=e.threshold,
                    action_taken=e.action,
                    message=e.message,
                )
                opened[(e.limit_id, e.target, e.day)] = v
                breach = self.risk.open.get((e.limit_id, e.target))
                if breach is not None and breach.opened_on == e.day:
                    breach.violation_id = v.pk
            elif e.kind == "resolved":
                v = (
                    opened.get((e.limit_id, e.target, e.opened_on))
                    or Violation.objects.filter(pk=e.violation_id).first()
                )
                if v is not None:
                    v.status, v.resolved_on = Violation.Status.RESOLVED, e.day
                    v.resolved_at = timezone.now()
                    v.message = f"{v.message}; {e.message}" if v.message else e.message
                    v.save(update_fields=["status", "resolved_on", "resolved_at", "message"])
        self.portfolio.risk_state = risk_state_dump(self.risk)
        self.portfolio.save(update_fields=["risk_state"])
        self._statuses_save(state)
        recent = [v for v in opened.values() if v.date >= self.alert_from]
        if recent:
            _alerts_enqueue(recent)
        self.events = []

    def _statuses_save(self, state: PortfolioState) -> None:
        changes = []
        for st in state.strategies:
            s = self.strategies[st.name]
            status = Strategy.Status.ACTIVE if st.active else Strategy.Status.PAUSED
            if s.status != status:
                changes.append(
                    ConfigChange(
                        actor="risk manager",
                        source="risk",
                        object_type="Strategy",
                        object_repr=s.name,
                        field="status",
                        before=s.status,
                        after=status,
                    )
                )
                s.status = status
                s.save(update_fields=["status"])
        ConfigChange.objects.bulk_create(changes)


def risk_session_open(
    portfolio: Portfolio, strategies, last_date: date
) -> RiskManagerSession | None:
    """The update path's factory: a session when the portfolio has enabled limits.
    Violations on bars more than ``QUANTSITE_ALERT_MAX_AGE_DAYS`` before the run's last
    bar (a catch-up replay of history) are recorded but not alerted."""
    rules = limit_rules(portfolio, strategies)
    if not rules:
        return None
    alert_from = last_date - timedelta(days=settings.QUANTSITE_ALERT_MAX_AGE_DAYS)
    return RiskManagerSession(portfolio, strategies, rules, alert_from)


def _alerts_enqueue(violations: list[Violation]) -> None:
    from risk.alerts import alerts_enqueue

    alerts_enqueue(violations=violations)


def strategy_resume(*, strategy: Strategy, actor: str) -> bool:
    """An operator resumes a strategy the risk manager paused (or any paused strategy).

    The strategy trades again from the next bar; the violation that paused it stays open
    (so the same breach does not pause it again) with the override in its message, and
    the change is in the audit trail. Returns False when it was not paused."""
    with transaction.atomic():
        portfolio = Portfolio.objects.select_for_update().get(pk=strategy.portfolio_id)
        strategy.refresh_from_db()
        if strategy.status == Strategy.Status.ACTIVE:
            return False
        risk = risk_state_load(portfolio)
        cause = risk.paused_by.pop(strategy.name, None)
        risk.strategy_peaks[strategy.name] = strategy.nav
        portfolio.risk_state = risk_state_dump(risk)
        portfolio.save(update_fields=["risk_state"])
        strategy.status = Strategy.Status.ACTIVE
        strategy.save(update_fields=["status"])
        ConfigChange.objects.create(
            actor=actor,
            source="admin",
            object_type="Strategy",
            object_repr=strategy.name,
            field="status",
            before=Strategy.Status.PAUSED,
            after=Strategy.Status.ACTIVE,
        )
        if cause is not None:
            breach = risk.open.get(cause)
            if breach is not None and breach.violation_id:
                v = Violation.objects.get(pk=breach.violation_id)
                v.message = f"{v.message}; {strategy.name} resumed by operator {actor}"
                v.save(update_fields=["message"])
    return True
