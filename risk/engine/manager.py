"""The risk manager's step of the daily cycle (step 4, after the fills of close t).

Every bar: measure (``measures.measure``), then for every enabled limit and target (the
portfolio, each strategy, each ticker, each sector or asset class):

* a breach (``value > threshold`` for ``max`` limits, ``<`` for ``min``) with no open
  violation for that limit and target opens one and takes the limit's action at close t:

  - ``liquidate_all`` (critical): every book closes every position it can trade today and
    the portfolio's risk multiplier becomes 0, so no new position is taken until recovery;
  - ``reduce_positions`` (high): exposure is scaled down by ``k`` so the limit holds:
    ``k = threshold / value`` for measures proportional to exposure (leverage, volatility,
    VaR, CVaR, a ticker's weight, top-5 concentration), applied to every book (portfolio
    scope), to the breaching book (strategy scope) or to the books holding the ticker in
    the net direction (position scope, ``k`` on their combined same-side holding so the
    net weight comes down to the threshold), or to the group's holdings, pro rata across
    the books holding them (sector / asset_class scopes: ``risk.engine.groups``, whose
    membership the caller passes as ``groups``; whole shares rounded up like a book's
    scaling). The multiplier keeps later fills scaled too (group and position cuts have no
    multiplier: while open they cut again whenever new fills push the measure back over).
    For measures that exposure does not scale (drawdown, correlation, diversification,
    position count) the action is ``pause_strategy`` instead (documented fallback);
  - ``pause_strategy`` (medium): the breaching strategy stops trading (positions kept and
    marked); for a portfolio-scope breach (correlation) one strategy of the most correlated
    pair is paused: the active one with the lower mean unit return over the risk window
    (on a tie, the first by name). A strategy may be paused by several breaches at once
    and resumes only when the last of them resolves; one an operator paused (or the
    configuration did) stays paused whatever resolves, until an operator resumes it;
  - ``reduce_position`` (low, position scope): that ticker is cut as ``reduce_positions``
    cuts it, and each book cut keeps the size it was left with as a cap on the ticker
    while the violation is open: later signal fills (and recovery trades) hold it there
    (``position_caps``: the cap in units, its resolution at full size). For a portfolio- or
    strategy-scope limit there is no one position to cut: alert only (documented fallback);
  - ``alert_only`` (low): nothing trades.

  While a violation is open its action keeps acting on any bar the measure is still beyond
  the threshold, without a new violation: a reduce is enforced again (new fills can push
  the measure back), and a portfolio-scope pause that no longer holds any strategy paused
  (its strategy was resumed by another breach's recovery, or the pair changed) pauses the
  weaker of the pair again, unless an operator overrode it.
* an open violation whose measure is back within its recovery threshold (default: half
  the threshold for drawdowns, the threshold otherwise) for at least ``cooldown_bars``
  bars since it opened resolves. Drawdown limits measure from the peak since the risk
  manager last acted on that target: a liquidation resets the portfolio's peak to the
  equity after it, a pause resets the strategy's peak NAV. A flat book cannot recover by
  itself, so "back within -5%" then means "has not lost 5% more since the action" and the
  violation resolves after its cooldown (a paused book that is or becomes flat is measured
  from its current NAV); a paused book that keeps its positions resumes only once it is
  within the recovery threshold of its best NAV since the pause. (A
  drawdown measured from the all-time peak would never let a liquidated portfolio
  re-enter, or would re-breach on the first bar after it did.)
* a reduce violation resolves only when its limit would hold at full exposure (the measure
  divided by the multiplier); until then exposure stays reduced.
* on the resolution of a liquidation the portfolio first rebalances its (all cash) books
  to their target allocations (trigger ``risk_breach``);
* on resolution exposure comes back in ``recovery_steps`` (e.g. 0.25, 0.5, 1) over
  successive bars: at each step the multiplier rises and the affected books trade to their
  latest decided targets at the new size (trades with reason ``risk_action``); a strategy
  paused by a violation resumes when it resolves.

Per-position stop-losses (``risk_config.stop_loss`` per strategy) are checked first, at
the same close, before the ramps and the limits: ``risk.engine.stops.stops_step`` (the
service's hook calls it just before ``risk_step``). Its state is ``RiskState.stops``; a
ticker cooling off after a stop is in ``StrategyState.reentry_blocked``, and
``_to_targets`` (the recovery ramps) trades it to 0 as the cycle's signal fills do.

Everything here is a pure function of the state passed in; the service persists it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
from portfolio.engine.book import negligible
from portfolio.engine.caps import capped_weights
from portfolio.engine.rebalance import rebalance
from portfolio.engine.state import DayContext, PortfolioState, StrategyState

from risk.engine import groups as group_limits
from risk.engine.measures import BookView, Measures, measure
from risk.engine.position_caps import capping, caps_apply, caps_tighten, full_size_weight
from risk.engine.stops import StopBook

REASON = "risk_action"
PROPORTIONAL = {
    "leverage",
    "gross_leverage",
    "volatility",
    "var_95",
    "var_99",
    "cvar_95",
    "cvar_99",
    "ticker_weight",
    "top5_concentration",
    "group_net_weight",
    "group_gross_weight",
}
GROUP_SCOPES = ("sector", "asset_class")  # risk.engine.groups


@dataclass(frozen=True)
class LimitRule:
    id: int
    name: str
    scope: str  # portfolio | strategy | position
    metric: str
    direction: str  # max | min
    threshold: float
    severity: str
    action: str
    strategy: str | None = None  # only this strategy (strategy scope)
    ticker: str | None = None  # only this ticker (position scope)
    group: str | None = None  # only this sector / asset class (group scopes)
    recovery_threshold: float | None = None
    recovery_steps: tuple[float, ...] = (0.25, 0.5, 1.0)
    cooldown_bars: int = 0

    def breached(self, value: float) -> bool:
        if value is None or math.isnan(value):
            return False
        return value > self.threshold if self.direction == "max" else value < self.threshold

    def recovery_level(self) -> float:
        if self.recovery_threshold is not None:
            return self.recovery_threshold
        return self.threshold / 2 if self.metric == "drawdown" else self.threshold

    def recovered(self, value: float) -> bool:
        if value is None or math.isnan(value):
            return False
        level = self.recovery_level()
        return value <= level if self.direction == "max" else value >= level


@dataclass
class OpenBreach:
    limit_id: int
    target: str  # "" portfolio, strategy name, or ticker
    opened_on: date
    value: float
    action: str
    bars: int = 0
    violation_id: int | None = None
    overridden: bool = False  # an operator resumed what it paused: it pauses no more
    caps: dict[str, float] = field(default_factory=dict)  # book -> |units| (reduce_position)


@dataclass
class RiskState:
    """What persists between bars (the service stores it on the portfolio)."""

    risk_peak: float | None = None
    open: dict[tuple[int, str], OpenBreach] = field(default_factory=dict)
    ramp: list[float] = field(default_factory=list)  # portfolio multiplier steps to come
    strategy_ramps: dict[str, list[float]] = field(default_factory=dict)
    # strategy -> the open breaches (limit id, target) that paused it, oldest first
    paused_by: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    strategy_peaks: dict[str, float] = field(default_factory=dict)  # NAV peak since last act
    stops: StopBook = field(default_factory=StopBook)  # per-position stops (risk.engine.stops)


@dataclass(frozen=True)
class RiskEvent:
    kind: str  # opened | resolved | enforced
    limit_id: int
    target: str
    day: date
    value: float
    threshold: float
    severity: str
    action: str
    message: str
    opened_on: date | None = None  # the breach's opening bar (resolved events)
    violation_id: int | None = None  # its stored violation, once persisted


def books_view(state: PortfolioState, marks) -> list[BookView]:
    scale = state.exposure_scale * state.risk_scale
    return [
        BookView(
            name=s.name,
            active=s.active,
            equity=s.book.equity(marks),
            quantities={t: h.quantity for t, h in s.book.holdings.items()},
            nav=s.nav,
            peak_nav=s.peak_nav,
            exposure=scale * s.risk_scale,
        )
        for s in state.strategies
    ]


def risk_step(
    state: PortfolioState,
    ctx: DayContext,
    risk: RiskState,
    limits: list[LimitRule],
    multipliers: dict[str, float],
    returns: np.ndarray,
    window: int = 60,
    groups: dict[str, dict[str, str]] | None = None,
) -> tuple[Measures, list[RiskEvent]]:
    """Advance ramps, measure, open/enforce/resolve violations and act, at close t.

    ``returns`` is the risk manager's own trailing window of unit returns (``T x N``,
    oldest first, through the bar before t; the caller keeps it, at least ``window``
    rows once that much history exists), independent of the allocation method's.
    ``groups``: per group scope (``sector``, ``asset_class``) each ticker's group, fixed
    for the run (``risk.engine.groups``)."""
    events: list[RiskEvent] = []
    returns = returns[-window:] if len(returns) else np.zeros((0, len(state.strategies)))
    _advance_ramps(state, ctx, risk)

    def remeasure() -> Measures:
        m = _measure(state, ctx, risk, multipliers, returns, window)
        return _measure_groups(m, state, ctx, multipliers, groups or {})

    m = remeasure()
    for key in list(risk.open):
        risk.open[key].bars += 1
    for rule in limits:
        for target, value in limit_values(rule, m, state, limits):
            key = (rule.id, target)
            breach = risk.open.get(key)
            if breach is None and rule.breached(value):
                breach = OpenBreach(rule.id, target, ctx.day, value, rule.action)
                risk.open[key] = breach
                n0 = len(ctx.fills)
                msg = _act(state, ctx, risk, rule, target, value, m, returns)
                _caps_after(state, ctx, risk, limits, rule, breach, n0)
                events.append(_event("opened", rule, target, ctx.day, value, msg))
                m = remeasure()
            elif (
                breach is not None
                and rule.recovered(_at_full_size(rule, target, value, state, ctx, breach))
                and breach.bars >= rule.cooldown_bars
            ):
                del risk.open[key]
                caps_apply(state, risk.open, limits)  # its caps lift
                msg = _recover(state, ctx, risk, rule, target)
                event = _event("resolved", rule, target, ctx.day, value, msg)
                events.append(
                    replace(event, opened_on=breach.opened_on, violation_id=breach.violation_id)
                )
            elif breach is not None and rule.breached(value):
                n0 = len(ctx.fills)
                msg = _enforce(state, ctx, risk, rule, breach, value, m, returns)
                _caps_after(state, ctx, risk, limits, rule, breach, n0)
                if msg:
                    events.append(_event("enforced", rule, target, ctx.day, value, msg))
                    m = remeasure()
    return m, events


def _caps_after(state, ctx, risk, limits, rule, breach: OpenBreach, n0: int) -> None:
    """A ``reduce_position`` cut (the fills from ``n0``) caps the books it cut."""
    if capping(rule) and len(ctx.fills) > n0:
        caps_tighten(breach.caps, state, breach.target, ctx.fills[n0:])
        caps_apply(state, risk.open, limits)


def _enforce(state, ctx, risk, rule, breach: OpenBreach, value, m, returns) -> str:
    """An open violation still beyond its threshold keeps acting (module docstring)."""
    if _reduces(rule):
        return _reduce(state, ctx, rule, breach.target, value, m)
    pauses = rule.action in ("pause_strategy", "reduce_positions")
    if not pauses or rule.scope != "portfolio" or breach.overridden:
        return ""
    key = (rule.id, breach.target)
    if any(key in causes for causes in risk.paused_by.values()):
        return ""
    name = _pause_candidate(state, m, returns)
    return _pause(state, risk, key, name) if name is not None else ""


def _measure(state, ctx, risk: RiskState, multipliers, returns, window) -> Measures:
    books = books_view(state, ctx.marks)
    total = math.fsum(b.equity for b in books)
    risk.risk_peak = max(risk.risk_peak or total, total)
    for s in state.strategies:
        if not s.active and not s.book.holdings:
            # a flat paused book cannot recover a drawdown: it is measured from here on
            risk.strategy_peaks[s.name] = s.nav
        risk.strategy_peaks[s.name] = max(risk.strategy_peaks.get(s.name, s.peak_nav), s.nav)
    return measure(
        books,
        ctx.marks,
        multipliers,
        returns,
        risk.risk_peak,
        window,
        strategy_peaks=risk.strategy_peaks,
    )


def _measure_groups(m: Measures, state, ctx, multipliers, groups) -> Measures:
    """The group exposures (``risk.engine.groups``) into ``m.detail["groups"]`` (scope ->
    basis -> group -> weight), and the ticker -> group mappings for the reduce."""
    total = math.fsum(s.book.equity(ctx.marks) for s in state.strategies)
    m.detail["groups"] = {
        scope: group_limits.group_exposures(
            m.detail["net"], ctx.marks, multipliers, total, groups.get(scope, {})
        )
        for scope in GROUP_SCOPES
    }
    m.detail["group_members"] = {scope: groups.get(scope, {}) for scope in GROUP_SCOPES}
    m.detail["multipliers"] = multipliers
    return m


def limit_values(rule: LimitRule, m: Measures, state: PortfolioState, limits=()):
    """Each (target, measured value) the rule checks at this close: "" for the portfolio,
    a strategy name, a ticker or a group."""
    if rule.scope in GROUP_SCOPES:
        basis = group_limits.BASIS.get(rule.metric, "net")
        yield from group_limits.group_targets(rule, limits, m.detail["groups"][rule.scope][basis])
    elif rule.scope == "portfolio":
        yield "", m.portfolio.get(rule.metric, math.nan)
    elif rule.scope == "strategy":
        for s in state.strategies:
            if rule.strategy in (None, s.name):
                yield s.name, m.strategies[s.name].get(rule.metric, math.nan)
    else:
        for ticker, weight in sorted(m.tickers.items()):
            if rule.ticker in (None, ticker):
                yield ticker, weight


def _at_full_size(
    rule: LimitRule, target: str, value: float, state: PortfolioState, ctx, breach
) -> float:
    """A reduce action's measure as it would be with the exposure restored: a violation
    resolves only when its limit would hold at full size, so a limit the configuration
    itself exceeds (say leverage_target 1.5 against a 1.2 cap) stays reduced instead of
    stepping back up and breaching again. A capped ticker: with its capped books at their
    signal's size (``position_caps.full_size_weight``)."""
    if capping(rule):
        return full_size_weight(state, ctx.marks, target, breach.caps)
    if not _reduces(rule) or rule.scope in ("position", *GROUP_SCOPES):
        return value
    scale = state.risk_scale
    if rule.scope == "strategy":
        scale *= _strategy(state, target).risk_scale
    return value / scale if scale > 0 else value


def _reduces(rule: LimitRule) -> bool:
    return (rule.action == "reduce_positions" and rule.metric in PROPORTIONAL) or capping(rule)


def _act(state, ctx, risk, rule, target, value, m, returns) -> str:
    if rule.action == "liquidate_all":
        for s in state.strategies:
            _scale_book(s, 0.0, ctx)
        state.risk_scale = 0.0
        risk.ramp = []
        risk.risk_peak = math.fsum(s.book.equity(ctx.marks) for s in state.strategies)
        return "liquidated every book; no new trades until recovery"
    if rule.action == "reduce_positions" and rule.metric in PROPORTIONAL:
        return _reduce(state, ctx, rule, target, value, m)
    if rule.action in ("pause_strategy", "reduce_positions"):
        name = target if rule.scope == "strategy" else _pause_candidate(state, m, returns)
        msg = _pause(state, risk, (rule.id, target), name)
        fallback = " (exposure does not scale this measure)"
        return msg + (fallback if rule.action != "pause_strategy" and name else "")
    if capping(rule):
        return _reduce(state, ctx, rule, target, value, m)
    if rule.action == "reduce_position":
        return "alert only (reduce_position cuts a position-scope breach only)"
    return "alert only"


def _pause(state, risk: RiskState, key: tuple[int, str], name: str | None) -> str:
    """Pause ``name`` for the breach ``key`` (kept among its causes)."""
    if name is None:
        return "no strategy to pause"
    s = _strategy(state, name)
    if not s.active and not risk.paused_by.get(name):
        # Paused by an operator (or the configuration), not by this manager: only they
        # resume it. Kept as a cause, the breach's recovery would resume it.
        return f"{name} already paused by an operator; left paused"
    causes = risk.paused_by.setdefault(name, [])
    if key not in causes:
        causes.append(key)
    if not s.active:
        return f"{name} already paused; kept paused by this breach too"
    s.active = False
    risk.strategy_peaks[name] = s.nav  # its drawdown is measured from here on
    risk.strategy_ramps.pop(name, None)
    return f"paused {name}"


def _reduce(state, ctx, rule, target, value, m) -> str:
    if not value > 0 or not rule.threshold > 0:
        return ""
    k = rule.threshold / value
    if rule.scope == "portfolio":
        state.risk_scale *= k
        for s in state.strategies:
            _scale_book(s, k, ctx)
        return f"scaled every book by {k:.4f}"
    if rule.scope == "strategy":
        s = _strategy(state, target)
        s.risk_scale *= k
        _scale_book(s, k, ctx)
        return f"scaled {target} by {k:.4f}"
    if rule.scope in GROUP_SCOPES:
        return _reduce_group(state, ctx, rule, target, m)
    return _reduce_ticker(state, ctx, rule, target, m)


def _reduce_group(state, ctx, rule, group, m) -> str:
    """Cut a sector / asset class back to its cap (``risk.engine.groups.group_cuts``)."""
    cuts, c = group_limits.group_cuts(
        books=[
            (s.name, {t: h.quantity for t, h in s.book.holdings.items()}, s.execution.whole_shares)
            for s in state.strategies
        ],
        net_quantity=m.detail["net"],
        marks=ctx.marks,
        multipliers=m.detail["multipliers"],
        tradable=ctx.today,
        members=m.detail["group_members"][rule.scope],
        group=group,
        basis=group_limits.BASIS[rule.metric],
        threshold=rule.threshold,
        equity=math.fsum(s.book.equity(ctx.marks) for s in state.strategies),
    )
    books = []
    for name, ticker, qty in cuts:
        s = _strategy(state, name)
        close = ctx.today[ticker]
        ctx.fills.append((name, s.book.trade(ticker, qty, close, ctx.day, s.execution, REASON)))
        books += [name] if name not in books else []
    return f"cut {group} by {c:.2%} in {', '.join(books)}" if cuts else ""


def _reduce_ticker(state, ctx, rule, ticker, m) -> str:
    """Bring |net| down to the threshold by cutting the books on the net side pro rata."""
    close = ctx.today.get(ticker, math.nan)
    if not close > 0:
        return ""
    net = m.detail["net"].get(ticker, 0.0)
    side = [
        s
        for s in state.strategies
        if s.book.holdings.get(ticker) and s.book.holdings[ticker].quantity * net > 0
    ]
    same = math.fsum(abs(s.book.holdings[ticker].quantity) for s in side)
    total = math.fsum(s.book.equity(ctx.marks) for s in state.strategies)
    mult = side[0].book.multiplier(ticker) if side else 1.0
    allowed = rule.threshold * total / (ctx.marks[ticker] * mult)  # |net| allowed, units
    keep = same - (abs(net) - allowed)
    if same <= 0 or keep >= same:
        return ""
    k = max(keep, 0.0) / same
    for s in side:
        q = s.book.holdings[ticker].quantity
        if negligible(q * (k - 1.0), q):
            continue
        ctx.fills.append(
            (s.name, s.book.trade(ticker, q * (k - 1.0), close, ctx.day, s.execution, REASON))
        )
    return f"cut {ticker} by {1 - k:.2%} in {', '.join(s.name for s in side)}"


def _scale_book(s: StrategyState, k: float, ctx: DayContext) -> None:
    for t, h in sorted(s.book.holdings.items()):
        close = ctx.today.get(t, math.nan)
        if close > 0:
            qty = h.quantity * (k - 1.0)
            if s.execution.whole_shares and k > 0:
                qty = math.copysign(math.ceil(abs(qty) - 1e-9), qty)
            if not negligible(qty, h.quantity):
                ctx.fills.append(
                    (s.name, s.book.trade(t, qty, close, ctx.day, s.execution, REASON))
                )


def _pause_candidate(state: PortfolioState, m: Measures, returns: np.ndarray) -> str | None:
    """The strategy a correlation breach pauses: of the most correlated pair, the active
    one with the lower mean unit return over the risk window (ties: the first by name);
    None when neither of the pair is active (or there is no pair)."""
    pair = m.detail.get("correlated_pair")
    if not pair:
        return None
    idx = {s.name: i for i, s in enumerate(state.strategies)}
    active = [n for n in pair if _strategy(state, n).active]
    if not active:
        return None
    means = {n: float(returns[:, idx[n]].mean()) if len(returns) else 0.0 for n in active}
    return min(active, key=lambda n: (means[n], n))


def _recover(state, ctx, risk, rule, target) -> str:
    steps = [x for x in rule.recovery_steps if x > 0] or [1.0]
    if capping(rule):
        return f"cap on {target} lifted"
    if rule.action == "liquidate_all":
        # The books are all cash: restore the target allocations before re-entering.
        rebalance(state, ctx, "risk_breach", "cash")
    if rule.action == "liquidate_all" or (rule.scope == "portfolio" and _reduces(rule)):
        risk.ramp = [x for x in steps if x > state.risk_scale] or [1.0]
        _advance_portfolio_ramp(state, ctx, risk)
        return f"re-entering in steps {', '.join(f'{x:g}' for x in steps)}"
    if rule.scope == "strategy" and _reduces(rule):
        s = _strategy(state, target)
        risk.strategy_ramps[target] = [x for x in steps if x > s.risk_scale] or [1.0]
        _advance_strategy_ramp(state, ctx, risk, target)
        return f"{target} re-entering in steps"
    messages = []
    for name in _book_order(state, risk.paused_by):
        causes = risk.paused_by[name]
        if (rule.id, target) not in causes:
            continue
        causes.remove((rule.id, target))
        if causes:
            messages.append(f"{name} stays paused by {len(causes)} other open breach(es)")
            continue
        del risk.paused_by[name]
        s = _strategy(state, name)
        if s.retired:  # an operator retired it meanwhile: it never trades again
            messages.append(f"{name} stays retired")
            continue
        s.active = True
        s.risk_scale = 0.0
        risk.strategy_ramps[name] = list(steps)
        _advance_strategy_ramp(state, ctx, risk, name)
        messages.append(f"resumed {name}, re-entering in steps")
    return "; ".join(messages) or "resolved"


def _advance_ramps(state, ctx, risk) -> None:
    if risk.ramp and not any(_blocks(r) for r in risk.open.values()):
        _advance_portfolio_ramp(state, ctx, risk)
    for name in _book_order(state, risk.strategy_ramps):
        _advance_strategy_ramp(state, ctx, risk, name)


def _book_order(state: PortfolioState, names) -> list[str]:
    """``names`` in the portfolio's strategy order (any unknown ones after, sorted). The
    risk state's dicts are stored as JSON and PostgreSQL's jsonb does not keep key order:
    iterated as loaded, a resumed run would fill (and word its messages) in another order
    than an uninterrupted one."""
    order = [s.name for s in state.strategies]
    return [n for n in order if n in names] + sorted(set(names) - set(order))


def _blocks(breach: OpenBreach) -> bool:
    return breach.action == "liquidate_all"


def _advance_portfolio_ramp(state, ctx, risk) -> None:
    state.risk_scale = risk.ramp.pop(0)
    for s in state.strategies:
        if s.active:
            _to_targets(state, s, ctx)


def _advance_strategy_ramp(state, ctx, risk, name) -> None:
    s = _strategy(state, name)
    steps = risk.strategy_ramps.get(name) or []
    if not steps:
        risk.strategy_ramps.pop(name, None)
        return
    s.risk_scale = steps.pop(0)
    if not steps:
        risk.strategy_ramps.pop(name, None)
    if s.active:
        _to_targets(state, s, ctx)


def _to_targets(state: PortfolioState, s: StrategyState, ctx: DayContext) -> None:
    """Trade a book to its latest decided targets (decided at t-1) at the current size."""
    if s.pending is None:
        return
    scale = state.exposure_scale * state.risk_scale * s.risk_scale
    weights = {t: w * scale for t, w in s.tradable_targets(s.pending).items()}
    weights = capped_weights(s, weights, ctx.today)
    for f in s.book.rebalance_to(
        weights, ctx.today, ctx.day, replace(s.execution, trade_band=0.0), REASON
    ):
        ctx.fills.append((s.name, f))


def _strategy(state: PortfolioState, name: str) -> StrategyState:
    return next(s for s in state.strategies if s.name == name)


def _event(kind, rule: LimitRule, target, day, value, message) -> RiskEvent:
    return RiskEvent(
        kind, rule.id, target, day, value, rule.threshold, rule.severity, rule.action, message
    )
