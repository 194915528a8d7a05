"""The risk manager in the update path: one session per chunk of applied dates.

``risk_session_open`` loads the portfolio's ``RiskBook`` (settings and the state carried
from bar to bar), its enabled limits, and rebuilds the return window from stored
``StrategySnapshot.unit_return`` rows; ``state_apply`` puts the stored exposure multipliers
on the engine state; ``hook`` is step 4 of every bar (``risk.engine.manager.risk_step``);
``decorate`` fills the snapshots' risk fields and their open-position figures (max
position weight and open MAE, ``risk.engine.excursion``, measured in ``hook`` after the
risk step's fills); ``persist`` writes violations, the status
changes it made (one audit row each, dated by its bar), and the ``RiskBook``, inside the
chunk's transaction; alerts are queued in that transaction and sent after the commit.

Nothing the manager carries across bars lives only in memory: a chunk of one bar and a
chunk of 5,000 leave the same rows (``operations.digest`` proves it).
"""

from __future__ import annotations

from collections import deque
from datetime import date, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portfolio import selectors
from portfolio.engine.sizing import risk_config_from_dict
from portfolio.engine.state import DayContext, PortfolioState
from portfolio.models import ConfigChange, Instrument, Portfolio, Strategy
from portfolio.services.controls import Origin, config_change_record
from risk.engine.excursion import (
    BookFigures,
    CloseHistory,
    OpenPosition,
    book_figures,
    portfolio_open_mae,
)
from risk.engine.manager import GROUP_SCOPES, LimitRule, OpenBreach, RiskEvent, RiskState, risk_step
from risk.engine.measures import Measures, finite_or_none
from risk.engine.position_caps import caps_apply
from risk.engine.stops import (
    StopEvent,
    reentry_blocks_apply,
    stop_book_dump,
    stop_book_load,
    stops_step,
)
from risk.models import RiskBook, RiskLimit, Violation

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
                group=limit.group or None,
                recovery_threshold=limit.recovery_threshold,
                recovery_steps=steps,
                cooldown_bars=limit.cooldown_bars,
            )
        )
    return rules


def instrument_groups() -> dict[str, dict[str, str]]:
    """Each ticker's sector and asset class (``risk.engine.groups``), one query, in ticker
    order: the group limits' membership, fixed for the chunk."""
    out: dict[str, dict[str, str]] = {"sector": {}, "asset_class": {}}
    rows = Instrument.objects.order_by("ticker").values_list("ticker", "sector", "asset_class")
    for ticker, sector, asset_class in rows:
        out["sector"][ticker] = sector or "Unknown"
        out["asset_class"][ticker] = asset_class
    return out


def risk_state_load(raw: dict) -> RiskState:
    """The engine's ``RiskState`` from ``RiskBook.state`` (see ``risk_state_dump``)."""
    raw = raw or {}
    state = RiskState(
        risk_peak=raw.get("risk_peak"),
        ramp=list(raw.get("ramp", [])),
        strategy_ramps={k: list(v) for k, v in raw.get("strategy_ramps", {}).items()},
        paused_by={
            k: [(int(c[0]), c[1]) for c in causes] for k, causes in raw.get("paused_by", {}).items()
        },
        strategy_peaks=dict(raw.get("strategy_peaks", {})),
        stops=stop_book_load(raw.get("stops")),
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
            overridden=b.get("overridden", False),
            caps={k: float(v) for k, v in b.get("caps", {}).items()},
        )
        state.open[(breach.limit_id, breach.target)] = breach
    return state


def risk_state_dump(risk: RiskState) -> dict:
    """JSON for ``RiskBook.state``: floats are written with ``repr`` and read back to the
    same double, so the state round-trips exactly. The stops' state only when there is
    any (a portfolio without stops stores what it always did); a breach's position caps
    only when it has some (sorted by book name; jsonb does not keep key order anyway)."""
    stops = {"stops": stop_book_dump(risk.stops)} if risk.stops else {}
    return stops | {
        "risk_peak": risk.risk_peak,
        "ramp": risk.ramp,
        "strategy_ramps": risk.strategy_ramps,
        "paused_by": {k: [list(c) for c in causes] for k, causes in risk.paused_by.items()},
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
                "overridden": b.overridden,
            }
            | ({"caps": {k: b.caps[k] for k in sorted(b.caps)}} if b.caps else {})
            for b in risk.open.values()
        ],
    }


def risk_book_get(portfolio: Portfolio) -> RiskBook:
    """The portfolio's risk book (unsaved defaults when it has none yet)."""
    return RiskBook.objects.filter(portfolio=portfolio).first() or RiskBook(portfolio=portfolio)


class RiskManagerSession:
    """The risk manager for one chunk of one portfolio (see ``operations.update``)."""

    def __init__(
        self,
        portfolio: Portfolio,
        strategies,
        rules: list[LimitRule],
        alert_from: date,
        closes: pd.DataFrame,
    ) -> None:
        self.portfolio = portfolio
        self.closes = CloseHistory(closes)
        self.open_figures: dict[date, dict[str, BookFigures]] = {}
        self.alert_from = alert_from
        self.strategies = {s.name: s for s in strategies}
        self.order = [s.name for s in strategies]
        self.rules = rules
        self.book = risk_book_get(portfolio)
        self.risk = risk_state_load(self.book.state)
        self.multipliers = selectors.multipliers()
        self.groups = instrument_groups()
        self.measures: dict[date, Measures] = {}
        self.events: list[RiskEvent] = []
        self.stop_events: list[StopEvent] = []
        self.stop_configs = {
            s.name: stop
            for s in strategies
            if (stop := risk_config_from_dict(s.risk_config, where=s.name).stop_loss)
        }
        self.status_changes: list[ConfigChange] = []
        dates, rows = selectors.unit_returns_tail(
            portfolio=portfolio, strategy_ids=[s.id for s in strategies], bars=self.window_bars
        )
        self.window: deque = deque(rows, maxlen=self.window_bars)
        self.window_last: date | None = dates[-1] if dates else None

    @property
    def window_bars(self) -> int:
        return self.book.window_bars

    def state_apply(self, state: PortfolioState) -> None:
        """The stored exposure multipliers and position caps onto the engine state loaded
        for the chunk."""
        state.risk_scale = self.book.portfolio_scale
        for s in state.strategies:
            s.risk_scale = float(self.book.strategy_scales.get(s.name, 1.0))
        reentry_blocks_apply(state, self.risk.stops)
        caps_apply(state, self.risk.open, self.rules)

    def hook(self, state: PortfolioState, ctx: DayContext) -> None:
        self._window_feed(state)
        before = {s.name: s.active for s in state.strategies}
        returns = np.array(self.window, dtype=float).reshape(len(self.window), len(self.order))
        # per-position stops first: after the signal fills of t, before the limits
        self.stop_events.extend(stops_step(state, ctx, self.risk.stops, self.stop_configs))
        measures, events = risk_step(
            state,
            ctx,
            self.risk,
            self.rules,
            self.multipliers,
            returns,
            self.window_bars,
            groups=self.groups,
        )
        self.measures[ctx.day] = measures
        self.events.extend(events)
        self._open_figures_record(state, ctx)
        for s in state.strategies:
            if s.active != before[s.name]:
                change = _status_change(s.name, s.active, ctx.day)
                change.portfolio = self.portfolio
                self.status_changes.append(change)

    def _open_figures_record(self, state: PortfolioState, ctx: DayContext) -> None:
        """Each book's max position weight and open MAE at this close, after every fill of
        it (step 5 does not trade), from the book and the stored closes only."""
        self.open_figures[ctx.day] = {
            s.name: book_figures(
                [
                    OpenPosition(t, h.quantity, h.avg_price, h.entry_date)
                    for t, h in s.book.holdings.items()
                ],
                ctx.marks,
                s.book.equity(ctx.marks),
                s.book.multipliers,
                self.closes,
                ctx.day,
            )
            for s in state.strategies
        }

    def _window_feed(self, state: PortfolioState) -> None:
        """Append the unit returns the engine recorded since the window's last bar (the
        cycle appends each bar's returns after its risk step, so at close t the newest is
        t-1's)."""
        for d, units in zip(state.history_dates, state.history, strict=True):
            if self.window_last is None or d > self.window_last:
                self.window.append(list(units))
                self.window_last = d

    def decorate(self, portfolio_rows: list[dict], strategy_rows: list[dict]) -> None:
        """Fill the chunk's snapshot rows (``books.ChunkRows``) with the risk figures."""
        for row in portfolio_rows:
            m = self.measures.get(row["date"])
            if m is None:
                continue
            for key, field in _SNAPSHOT_FIELDS.items():
                row[field] = finite_or_none(m.portfolio.get(key))
            row["risk"] = {k: finite_or_none(m.portfolio.get(k)) for k in _DETAIL} | {
                "tickers": {t: round(w, 10) for t, w in m.tickers.items()},
                "correlation": m.detail.get("correlation"),
                "risk_contribution": m.detail.get("risk_contribution"),
                "marginal_contribution": m.detail.get("marginal_contribution"),
                "weights": m.detail.get("strategy_weights"),
                "correlated_var_95": m.detail.get("correlated_var_95"),
                "correlated_pair": m.detail.get("correlated_pair"),
                "limit_drawdown": finite_or_none(m.portfolio.get("drawdown")),
            }
        for row in strategy_rows:
            m = self.measures.get(row["date"])
            if m is not None:
                row["volatility"] = finite_or_none(m.strategies[row["name"]].get("volatility"))
        self._open_figures_decorate(portfolio_rows, strategy_rows)

    def _open_figures_decorate(self, portfolio_rows: list[dict], strategy_rows: list[dict]):
        for row in strategy_rows:
            f = self.open_figures[row["date"]][row["name"]]
            row["max_position_weight"] = finite_or_none(f.max_position_weight)
            row["open_mae"] = finite_or_none(f.open_mae)
        for row in portfolio_rows:
            books = self.open_figures[row["date"]]
            row["open_mae"] = finite_or_none(portfolio_open_mae([books[n] for n in self.order]))

    def persist(self, state: PortfolioState) -> None:
        """Violations opened and resolved in this chunk, the status changes, and the risk
        book (inside the chunk's transaction)."""
        opened: dict[tuple[int, str, date], Violation] = {}
        resolved: list[Violation] = []
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
                    group=e.target if rule.scope in GROUP_SCOPES else "",
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
                    resolved.append(v)
        opened.update(self._stops_persist(instruments, resolved))
        self._statuses_save(state)
        self.book.state = risk_state_dump(self.risk)
        self.book.portfolio_scale = state.risk_scale
        self.book.strategy_scales = {s.name: s.risk_scale for s in state.strategies}
        self.book.as_of = state.last_date
        self.book.save()
        recent = [v for v in opened.values() if v.date >= self.alert_from]
        if recent:
            _alerts_enqueue(recent)
        if resolved:  # after the openings: one chunk may open and resolve a violation
            _alerts_enqueue_resolved(resolved)
        self.events = []

    def _stops_persist(self, instruments, resolved: list[Violation]) -> dict:
        """One violation per stop (limit ``STOP_LIMIT``, the strategy and the ticker), open
        until its cool-off ends (found again by strategy and ticker: at most one is open);
        the opened ones by key, the resolved ones appended to ``resolved``."""
        if not self.stop_events:
            return {}
        limit = stop_limit_get(self.portfolio)
        opened = {}
        for e in self.stop_events:
            strategy = self.strategies[e.strategy]
            if e.kind == "opened":
                v = Violation.objects.create(
                    portfolio=self.portfolio,
                    limit=limit,
                    severity=limit.severity,
                    strategy=strategy,
                    instrument_id=instruments.get(e.ticker),
                    date=e.day,
                    value=e.close,
                    threshold=e.stop,
                    action_taken=limit.action,
                    message=e.message,
                )
                opened[("stop", e.strategy, e.ticker, e.day)] = v
                continue
            v = Violation.objects.filter(
                limit=limit,
                strategy=strategy,
                instrument_id=instruments.get(e.ticker),
                status=Violation.Status.OPEN,
            ).first()
            if v is not None:
                v.status, v.resolved_on = Violation.Status.RESOLVED, e.day
                v.resolved_at = timezone.now()
                v.message = f"{v.message}; {e.message}"
                v.save(update_fields=["status", "resolved_on", "resolved_at", "message"])
                resolved.append(v)
        self.stop_events = []
        return opened

    def _statuses_save(self, state: PortfolioState) -> None:
        """One audit row per pause and resume, in bar order (a pause and its resume inside
        one chunk are both recorded), then the strategies' final status."""
        ConfigChange.objects.bulk_create(self.status_changes)
        self.status_changes = []
        for st in state.strategies:
            s = self.strategies[st.name]
            status = Strategy.Status.ACTIVE if st.active else Strategy.Status.PAUSED
            if s.status != status:
                s.status = status
                s.save(update_fields=["status"])


STOP_LIMIT = "position stop-loss"


def stop_limit_get(portfolio: Portfolio) -> RiskLimit:
    """The limit every stop-loss violation of the portfolio refers to (created with the
    first stop). Disabled: the limits loop never evaluates it, and a reload of
    risk_limits.yaml leaves it as it is; the stops themselves are per strategy, in
    ``risk_config.stop_loss``."""
    limit, _ = RiskLimit.objects.get_or_create(
        portfolio=portfolio,
        name=STOP_LIMIT,
        defaults={
            "scope": RiskLimit.Scope.POSITION,
            "metric": "stop_loss",
            "direction": RiskLimit.Direction.MIN,
            "threshold": 0.0,
            "severity": "low",
            "action": "reduce_position",  # the low rung: it closes that one position
            "enabled": False,
            "source": "strategies[].risk_config.stop_loss",
        },
    )
    return limit


def _status_change(name: str, active: bool, day: date) -> ConfigChange:
    before, after = Strategy.Status.PAUSED, Strategy.Status.ACTIVE
    if not active:
        before, after = after, before
    return ConfigChange(
        actor="risk manager",
        source="risk",
        object_type="Strategy",
        object_repr=name,
        field="status",
        before=before,
        after=after,
        bar_date=day,
    )


def risk_session_open(
    portfolio: Portfolio, strategies, last_date: date, closes: pd.DataFrame | None = None
) -> RiskManagerSession:
    """The update path's risk manager for one chunk. It always measures (a portfolio
    without limits still gets its VaR, volatility and correlations stored); limits act
    when enabled. Violations on bars more than ``QUANTSITE_ALERT_MAX_AGE_DAYS`` before the
    run's last bar (a catch-up replay of history) are recorded but not alerted.
    ``closes``: the close frame the engine marks with (read from the database when not
    given), for the open positions' worst close since entry."""
    rules = limit_rules(portfolio, strategies)
    alert_from = last_date - timedelta(days=settings.QUANTSITE_ALERT_MAX_AGE_DAYS)
    if closes is None:
        closes = selectors.price_frame(end=last_date)
    return RiskManagerSession(portfolio, strategies, rules, alert_from, closes)


def _alerts_enqueue(violations: list[Violation]) -> None:
    from risk.alerts import alerts_enqueue

    alerts_enqueue(violations=violations)


def _alerts_enqueue_resolved(violations: list[Violation]) -> None:
    from risk.alerts import alerts_enqueue_resolved

    alerts_enqueue_resolved(violations=violations)


def strategy_resume(
    *, strategy: Strategy, actor: str, source: str = "admin", ip: str | None = None
) -> bool:
    """An operator resumes a strategy the risk manager paused (or any paused strategy).

    The strategy trades again from the next bar; the violations that paused it stay open
    (so the same breach does not pause it again: each is marked overridden) with the
    override in their message, and the change is in the audit trail. Returns False when it
    was not paused."""
    with transaction.atomic():
        portfolio = Portfolio.objects.select_for_update().get(pk=strategy.portfolio_id)
        strategy.refresh_from_db()
        if strategy.status == Strategy.Status.ACTIVE or strategy.retired_at is not None:
            return False  # nothing to resume (a retired strategy stays paused)
        book = risk_book_get(portfolio)
        risk = risk_state_load(book.state)
        causes = risk.paused_by.pop(strategy.name, [])
        risk.strategy_peaks[strategy.name] = strategy.nav
        for cause in causes:
            breach = risk.open.get(cause)
            if breach is None:
                continue
            breach.overridden = True
            if breach.violation_id:
                v = Violation.objects.get(pk=breach.violation_id)
                v.message = f"{v.message}; {strategy.name} resumed by operator {actor}"
                v.save(update_fields=["message"])
        book.state = risk_state_dump(risk)
        book.save()
        strategy.status = Strategy.Status.ACTIVE
        strategy.save(update_fields=["status"])
        config_change_record(
            obj=strategy,
            portfolio=portfolio,
            field="status",
            before=Strategy.Status.PAUSED,
            after=Strategy.Status.ACTIVE,
            origin=Origin(actor=actor, source=source, ip=ip),
        )
    return True
