"""The daily cycle of a multi-strategy portfolio (DESIGN.md, "The daily cycle").

For each bar date t, in order, with close-only data:

1. mark every book to the close of t (a ticker without a bar at t keeps its last close);
2. a retired book still holding anything is wound down at close t (its positions closed,
   its cash handed to the active books: ``rebalance.retire_books``); then a portfolio
   rebalance if a trigger fires at t (``rebalance``: manual, periodic or drift threshold):
   the allocation method sets new allocations and capital moves between the *active*
   books at close t (paused books keep their capital);
3. orders decided at t-1 fill at close t for every active strategy whose frequency makes t
   a trading day, sized with the equity after step 2 and scaled by the risk manager's
   multipliers (``PortfolioState.risk_scale`` x ``StrategyState.risk_scale``, 1 normally)
   and held within its position caps (``StrategyState.position_caps``: ``caps``);
4. the risk hook, when given (the risk manager's step); it may trade and may call
   ``rebalance.rebalance(state, ctx, "risk_breach")``;
5. every strategy records its targets decided with data through close t, to fill later.

Trade approval (optional per strategy, ``StrategyState.approval_required``): at step 5 an
active gated strategy whose targets would trade holds them for an operator
(``OrderDecision``); at step 3 of the next bar they fill only if an operator approved them
in between (``StrategyState.reviews``), and otherwise expire. Every held decision gets one
``OrderOutcome`` (filled, rejected or expired, with its cause). Only the signal's orders
are gated: rebalance and risk-manager fills never wait for a person. In a run that applies
several bars, every decision but the last expires, since nobody could have approved it in
time; the reviews are stored, so a replay that reads them trades exactly as the live path.

Inputs: ``closes`` a DataFrame (DatetimeIndex ascending, one float column per ticker, NaN
where there is no bar) covering at least the dates to apply, history included; ``targets``
maps a strategy name to a frame of target weights of the same shape (row t decided at
close t). Outputs: one ``DayResult`` per date, the state updated in place.

Weights: allocations sum to the exposure scale T (the leverage target L for the normalized
methods). A book holds capital share ``allocation_i / T`` and trades its targets scaled by
T, so its notional exposure is ``allocation_i`` of portfolio equity. With T = 1 nothing is
scaled. The allocation methods and the risk estimates read *unit* returns
(``unit_return``): each book's daily return per unit of the exposure it held overnight.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd

from portfolio.engine.book import Fill
from portfolio.engine.calendar import bar_numbers, is_period_start
from portfolio.engine.caps import capped_weights
from portfolio.engine.rebalance import rebalance, retire_books, trigger_due
from portfolio.engine.state import (
    DayContext,
    ManualRequest,
    OrderDecision,
    OrderOutcome,
    PortfolioState,
    RebalanceRecord,
    StrategyState,
)

__all__ = [
    "DayContext",
    "DayResult",
    "ManualRequest",
    "OrderDecision",
    "OrderOutcome",
    "PortfolioState",
    "RebalanceRecord",
    "StrategyState",
    "apply_dates",
    "exposure_held",
    "unit_return",
]


@dataclass(frozen=True)
class StrategyDay:
    name: str
    equity: float
    cash: float
    long_exposure: float
    short_exposure: float
    leverage: float
    weight: float
    daily_return: float
    drawdown: float
    positions_count: int
    realized_pnl: float
    unrealized_pnl: float
    active: bool
    allocation: float = 0.0  # in force at the close
    unit_return: float = 0.0  # per unit of the exposure held (``unit_return``)
    flow: float = 0.0  # capital moved into the book at this close (negative: out)


@dataclass(frozen=True)
class PortfolioDay:
    equity: float
    cash: float
    long_exposure: float
    short_exposure: float
    net_exposure: float
    gross_exposure: float
    leverage: float
    daily_return: float
    drawdown: float
    positions_gross: int
    positions_net: int


@dataclass
class DayResult:
    date: date
    strategies: list[StrategyDay]
    portfolio: PortfolioDay
    fills: list[tuple[str, Fill]] = field(default_factory=list)
    rebalances: list[RebalanceRecord] = field(default_factory=list)
    exposure_scale: float = 1.0  # T in force during the day (the one the return earned)
    order_decisions: list[OrderDecision] = field(default_factory=list)  # held for approval
    order_outcomes: list[OrderOutcome] = field(default_factory=list)  # of earlier decisions

    @property
    def rebalance(self) -> RebalanceRecord | None:
        """The day's first rebalance (funding or trigger), if any."""
        return self.rebalances[0] if self.rebalances else None


RiskHook = Callable[[PortfolioState, DayContext], None]


def apply_dates(
    state: PortfolioState,
    closes: pd.DataFrame,
    targets: dict[str, pd.DataFrame],
    dates: list[date],
    risk_hook: RiskHook | None = None,
) -> list[DayResult]:
    """Apply ``dates`` (ascending, all after ``state.last_date``) to ``state``."""
    marks_frame = closes.ffill()
    tickers = list(closes.columns)
    has_bar = closes.notna().any(axis=1).to_numpy()
    bar_days = [d for d, ok in zip(closes.index.date, has_bar, strict=True) if ok]
    numbers = dict(zip(bar_days, bar_numbers(bar_days, state.rebalance_frequency), strict=True))
    index = {d: i for i, d in enumerate(closes.index.date)}
    close_values, mark_values = closes.to_numpy(), marks_frame.to_numpy()
    target_rows = {name: (frame.to_numpy(), list(frame.columns)) for name, frame in targets.items()}
    results = []
    for day in dates:
        prev = state.last_date
        if prev is not None and day <= prev:
            raise ValueError(f"date {day} is not after the last applied date {prev}")
        if prev is not None and prev not in index:
            raise ValueError(f"closes must include the last applied date {prev} (its marks)")
        i = index[day]
        # marks of the prior close: the gross exposure each book held overnight
        prev_marks = _row_dict(tickers, mark_values[index[prev]], keep_nan=False) if prev else {}
        ctx = DayContext(
            day=day,
            today=_row_dict(tickers, close_values[i]),
            marks=_row_dict(tickers, mark_values[i], keep_nan=False),
            flows={s.name: 0.0 for s in state.strategies},
        )
        decisions = {
            name: _row_dict(cols, values[i], keep_zero=False)
            for name, (values, cols) in target_rows.items()
        }
        day_result = _apply_day(state, ctx, decisions, numbers.get(day, 0), risk_hook, prev_marks)
        results.append(day_result)
    return results


def _row_dict(tickers, values, keep_nan: bool = True, keep_zero: bool = True) -> dict:
    out = {}
    for t, v in zip(tickers, values, strict=True):
        v = float(v)
        if (not keep_nan and math.isnan(v)) or (not keep_zero and (v == 0 or math.isnan(v))):
            continue
        out[t] = v
    return out


def _apply_day(
    state, ctx: DayContext, decisions, bar_number: int, risk_hook, prev_marks
) -> DayResult:
    prev, day = state.last_date, ctx.day
    # The exposure held overnight (T times the risk multipliers, or the gross a paused book
    # held beyond them): today's returns earned it.
    scale_used = state.exposure_scale * state.risk_scale
    held = {s.name: _overnight_exposure(s, scale_used, prev_marks) for s in state.strategies}
    if prev is None:
        ctx.rebalances.append(_fund_initial(state, ctx.flows))
    else:
        if (wound_down := retire_books(state, ctx)) is not None:
            ctx.rebalances.append(wound_down)
        trigger = trigger_due(state, ctx, bar_number)
        if trigger is not None:
            rebalance(state, ctx, trigger)
    scale = state.exposure_scale * state.risk_scale
    for s in state.strategies:
        if s.pending is None:
            continue
        trading_day = is_period_start(s.frequency, day, prev)
        if not _order_cleared(s, ctx, trading_day):
            s.pending = None  # nor may the risk manager's ramp (step 4) trade toward them
            continue
        if s.active and trading_day:
            pending = s.tradable_targets(s.pending)
            scaled = {t: w * scale * s.risk_scale for t, w in pending.items()}
            scaled = capped_weights(s, scaled, ctx.today)  # open reduce_position caps
            equity = s.book.equity(ctx.today)  # what rebalance_to sizes on
            for f in s.book.rebalance_to(scaled, ctx.today, day, s.execution, "signal"):
                detail = sizing_detail(state, s, pending, scaled, equity, ctx.today, f.ticker)
                ctx.fills.append((s.name, replace(f, sizing=detail)))
    if risk_hook is not None:
        risk_hook(state, ctx)
    ctx.order_outcomes[:] = [_outcome_counted(o, ctx.fills) for o in ctx.order_outcomes]
    decided = _decide(state, ctx, decisions)
    state.last_date = day
    strategy_days, portfolio_day = _snapshot(state, ctx.marks, ctx.flows, held, prev)
    return DayResult(
        day,
        strategy_days,
        portfolio_day,
        ctx.fills,
        ctx.rebalances,
        exposure_scale=scale_used,
        order_decisions=decided,
        order_outcomes=list(ctx.order_outcomes),
    )


def sizing_detail(
    state: PortfolioState, s: StrategyState, pending, scaled, equity: float, closes, ticker
) -> dict[str, float]:
    """What step 3 sized a signal fill in ``ticker`` from (stored as ``Trade.sizing``):
    ``target`` the sized target weight decided at the bar before (``sizing.size_targets``),
    ``exposure_scale`` T, ``portfolio_risk`` and ``strategy_risk`` the risk manager's
    multipliers, ``weight`` = target x T x portfolio_risk x strategy_risk after any open
    ``reduce_position`` cap (``caps``), ``equity`` the book's equity at the close before the
    fill and ``close`` that close: the quantity held after the fill is
    weight x equity / (close x contract multiplier) (``Book.target_quantity``)."""
    return {
        "target": float(pending.get(ticker, 0.0)),
        "exposure_scale": float(state.exposure_scale),
        "portfolio_risk": float(state.risk_scale),
        "strategy_risk": float(s.risk_scale),
        "weight": float(scaled.get(ticker, 0.0)),
        "equity": float(equity),
        "close": float(closes[ticker]),
    }


def _order_cleared(s: StrategyState, ctx: DayContext, trading_day: bool) -> bool:
    """Step 3's approval gate (DESIGN "Trade approval"). ``s.reviews`` holds the stored
    review of every decision held for approval; a decision without one was not held
    (ungated, or decided while the strategy was paused). Records the decision's outcome
    in ``ctx.order_outcomes`` and says whether its signal orders may fill now."""
    review = s.reviews.pop(s.pending_date, None)
    if review is None and not s.approval_required:
        return True
    if review == "rejected":
        status, cause, cleared = "rejected", "rejected by an operator", False
    elif review is None:
        status, cause, cleared = "expired", "not held for approval (decided before)", False
    elif review == "approved" or not s.approval_required:
        cleared = s.active and trading_day
        status = "filled" if cleared else "expired"
        cause = (
            ("approved" if review == "approved" else "approval no longer required")
            if cleared
            else ("strategy paused" if not s.active else "not a trading day of the strategy")
        )
    else:
        status, cause, cleared = "expired", "not approved before the next bar", False
    ctx.order_outcomes.append(OrderOutcome(s.name, s.pending_date, ctx.day, status, cause))
    return cleared


def _outcome_counted(o: OrderOutcome, fills) -> OrderOutcome:
    if o.status != "filled":
        return o
    n = sum(1 for name, f in fills if name == o.name and f.reason == "signal")
    return OrderOutcome(o.name, o.decided_on, o.day, o.status, o.cause, n)


def _decide(state: PortfolioState, ctx: DayContext, decisions) -> list[OrderDecision]:
    """Step 5: every strategy records the targets decided at this close, to fill at the
    next. An active approval-gated strategy whose targets would trade holds them for an
    operator (an ``OrderDecision``, orders sized at this close as step 3 would size them
    now); one whose targets would not trade has nothing to approve and fills nothing."""
    held = []
    scale = state.exposure_scale * state.risk_scale
    for s in state.strategies:
        targets = decisions.get(s.name, {})
        s.pending, s.pending_date = targets, ctx.day
        if not (s.approval_required and s.active):
            continue
        scaled = {t: w * scale * s.risk_scale for t, w in s.tradable_targets(targets).items()}
        scaled = capped_weights(s, scaled, ctx.today)
        orders = s.book.orders_to(scaled, ctx.today, s.execution)
        if not orders:
            s.pending = None
            continue
        s.reviews.setdefault(ctx.day, "pending")
        held.append(OrderDecision(s.name, ctx.day, dict(targets), tuple(orders)))
    return held


def exposure_held(multiplier: float, gross: float, equity: float, active: bool) -> float:
    """The exposure ``X`` a book holds, in multiples of its equity ``E``: its multiplier
    (the portfolio's exposure scale T x the risk manager's multipliers) while it is active,
    ``max(multiplier, gross / E)`` while it is paused (``gross / E`` its gross leverage,
    ``sum |mv| / E``; the multiplier alone when ``E <= 0``). An active book trades its
    targets scaled by the multiplier, so its positions follow it. A paused book keeps the
    positions it had: the risk manager can cut its multiplier over and over (every bar a
    strategy limit stays breached) while the book's gross leverage stays where that limit
    holds it, and the multiplier then no longer says what the book holds."""
    if active or not equity > 0:
        return multiplier
    return max(multiplier, gross / equity)


def unit_return(daily_return: float, exposure: float, equity_base: float | None) -> float:
    """A book's *unit* return, what the allocation methods and the risk estimates read: its
    daily return (flows excluded) per unit of the exposure it held overnight,
    ``u_t = r_t / X_{t-1}``, ``X`` from ``exposure_held`` at the prior close. With
    ``r_t = P&L_t / E_{t-1}`` that is ``P&L_t / (X_{t-1} E_{t-1})``; for a paused book holding
    more than its multiplier says, the P&L per unit of the gross exposure it held. A day on
    which the book held no exposure (``X = 0``: scaled to nothing or liquidated) or had no
    positive equity base (``E_{t-1} <= 0``) says nothing about the strategy: ``u_t = 0``.
    Every input is stored state or a stored close, so the number does not depend on how
    the bars are chunked."""
    if not exposure > 0 or equity_base is None or not equity_base > 0:
        return 0.0
    return daily_return / exposure + 0.0  # never -0.0 (see risk.engine.measures.finite_or_none)


def _overnight_exposure(s: StrategyState, scale: float, prev_marks) -> float:
    multiplier = scale * s.risk_scale
    if s.active or not s.book.holdings or not s.last_equity:
        return multiplier
    long_mv, short_mv = s.book.exposures(prev_marks)
    return exposure_held(multiplier, long_mv + short_mv, s.last_equity, s.active)


def _fund_initial(state: PortfolioState, flows) -> RebalanceRecord:
    total = state.exposure_scale
    shares = {s.name: (s.allocation / total if total > 0 else 0.0) for s in state.strategies}
    for s in state.strategies:
        amount = state.initial_capital * shares[s.name]
        s.book.cash += amount
        flows[s.name] += amount
        s.last_equity = 0.0
    allocations = {s.name: s.allocation for s in state.strategies}
    return RebalanceRecord(
        trigger="initial",
        weights_before={s.name: 0.0 for s in state.strategies},
        weights_after=shares,
        capital_moved=state.initial_capital,
        trades_count=0,
        cost=0.0,
        allocations_before=allocations,
        allocations_after=allocations,
        notes={n: "initial funding at the configured weight" for n in allocations},
    )


def _snapshot(
    state: PortfolioState, marks, flows, held: dict[str, float], prev: date | None
) -> tuple[list[StrategyDay], PortfolioDay]:
    equities = [s.book.equity(marks) for s in state.strategies]
    units = []
    total = math.fsum(equities)
    days = []
    net_qty: dict[str, float] = {}
    abs_qty: dict[str, float] = {}
    mult: dict[str, float] = {}
    positions_gross = 0
    for s, equity in zip(state.strategies, equities, strict=True):
        long_mv, short_mv = s.book.exposures(marks)
        base = s.last_equity
        if base:
            r = (equity - flows[s.name]) / base - 1.0
        else:
            r = 0.0
        s.nav *= 1.0 + r
        s.peak_nav = max(s.peak_nav, s.nav)
        s.last_equity = equity
        # A book with no allocation earns no return to learn from: its history is kept as
        # it was (a cut to 0 must not reset it, or ``min_history`` would hand the book its
        # full static weight back at the next rebalance), and counts on once it has capital.
        if s.allocation > 0 and (s.history_days > 0 or r != 0.0):
            s.history_days += 1
        unit = unit_return(r, held[s.name], base)
        units.append(unit)
        for t, h in s.book.holdings.items():
            net_qty[t] = net_qty.get(t, 0.0) + h.quantity
            abs_qty[t] = abs_qty.get(t, 0.0) + abs(h.quantity)
            mult[t] = s.book.multiplier(t)
        positions_gross += len(s.book.holdings)
        days.append(
            StrategyDay(
                name=s.name,
                equity=equity,
                cash=s.book.cash,
                long_exposure=long_mv,
                short_exposure=short_mv,
                leverage=(long_mv + short_mv) / equity if equity > 0 else 0.0,
                weight=equity / total if total else 0.0,
                daily_return=r,
                drawdown=s.nav / s.peak_nav - 1.0,
                positions_count=len(s.book.holdings),
                realized_pnl=s.book.realized_pnl,
                unrealized_pnl=s.book.unrealized_pnl(marks),
                active=s.active,
                allocation=s.allocation,
                unit_return=unit,
                flow=flows[s.name],
            )
        )
    # A net quantity within 1e-12 of the quantities that make it is rounding residue of
    # books that offset each other (a long and a short of the same size): flat, by the
    # risk manager's netting rule (``risk.engine.exposure.net_positions``), so the stored
    # netted exposure and count agree with what the risk manager measured.
    net_mv = np.array(
        [q * marks[t] * mult[t] for t, q in net_qty.items() if abs(q) > 1e-12 * abs_qty[t]],
        dtype=float,
    )
    long_mv = float(net_mv[net_mv > 0].sum()) if net_mv.size else 0.0
    short_mv = float(-net_mv[net_mv < 0].sum()) if net_mv.size else 0.0
    if prev is not None:  # the funding day has no return
        state.history.append(units)
        state.history_dates.append(state.last_date)
    prev_equity = state.last_equity
    r = total / prev_equity - 1.0 if prev_equity else 0.0
    state.peak_equity = max(state.peak_equity or total, total)
    state.last_equity = total
    portfolio_day = PortfolioDay(
        equity=total,
        cash=math.fsum(s.book.cash for s in state.strategies),
        long_exposure=long_mv,
        short_exposure=short_mv,
        net_exposure=long_mv - short_mv,
        gross_exposure=long_mv + short_mv,
        leverage=(long_mv + short_mv) / total if total > 0 else 0.0,
        daily_return=r,
        drawdown=total / state.peak_equity - 1.0 if state.peak_equity else 0.0,
        positions_gross=positions_gross,
        positions_net=int(net_mv.size),
    )
    return days, portfolio_day
