"""The daily cycle of a multi-strategy portfolio (DESIGN.md, "The daily cycle").

For each bar date t, in order, with close-only data:

1. mark every book to the close of t (a ticker without a bar at t keeps its last close);
2. portfolio rebalance if one is due at t: cash moves between the *active* books at close
   t so each holds ``allocation_i / sum(active allocations)`` of the active books' equity
   (paused books keep their capital); a book short of cash sells pro rata to fund it;
3. orders decided at t-1 fill at close t for every active strategy whose frequency makes t
   a trading day, sized with the equity after step 2;
4. the risk hook, when given (the risk manager's step);
5. every strategy records its targets decided with data through close t, to fill later.

Inputs: ``closes`` a DataFrame (DatetimeIndex ascending, one float column per ticker, NaN
where there is no bar) covering at least the dates to apply; ``targets`` maps a strategy
name to a frame of target weights of the same shape (row t decided at close t).
Outputs: one ``DayResult`` per date, the state updated in place.

Weights: a strategy's allocations sum to the portfolio's leverage target L. Its book gets
capital share ``allocation_i / L`` and trades its targets scaled by L, so its notional
exposure is ``allocation_i`` of portfolio equity. With L = 1 nothing is scaled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from portfolio.engine.book import Book, Execution, Fill
from portfolio.engine.calendar import is_period_start


@dataclass
class StrategyState:
    name: str
    allocation: float
    active: bool
    frequency: str
    execution: Execution
    book: Book
    pending: dict[str, float] | None = None
    pending_date: date | None = None
    nav: float = 1.0  # cumulative return index, flows excluded
    peak_nav: float = 1.0
    last_equity: float | None = None


@dataclass
class PortfolioState:
    initial_capital: float
    leverage_target: float
    strategies: list[StrategyState]
    rebalance_trigger: str = "periodic"  # periodic | threshold | manual
    rebalance_frequency: str = "monthly"
    rebalance_threshold: float = 0.05
    last_date: date | None = None
    peak_equity: float | None = None
    last_equity: float | None = None


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


@dataclass(frozen=True)
class RebalanceRecord:
    trigger: str
    weights_before: dict[str, float]
    weights_after: dict[str, float]
    capital_moved: float
    trades_count: int
    cost: float
    method: str = "cash"


@dataclass
class DayResult:
    date: date
    strategies: list[StrategyDay]
    portfolio: PortfolioDay
    fills: list[tuple[str, Fill]] = field(default_factory=list)
    rebalance: RebalanceRecord | None = None


RiskHook = Callable[[date, PortfolioState, dict[str, float]], list[tuple[str, Fill]]]


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
    index = {d: i for i, d in enumerate(closes.index.date)}
    close_values, mark_values = closes.to_numpy(), marks_frame.to_numpy()
    target_rows = {name: (frame.to_numpy(), list(frame.columns)) for name, frame in targets.items()}
    results = []
    for day in dates:
        if state.last_date is not None and day <= state.last_date:
            raise ValueError(f"date {day} is not after the last applied date {state.last_date}")
        i = index[day]
        today = _row_dict(tickers, close_values[i])
        marks = _row_dict(tickers, mark_values[i], keep_nan=False)
        decisions = {
            name: _row_dict(cols, values[i], keep_zero=False)
            for name, (values, cols) in target_rows.items()
        }
        results.append(_apply_day(state, day, today, marks, decisions, risk_hook))
    return results


def _row_dict(tickers, values, keep_nan: bool = True, keep_zero: bool = True) -> dict:
    out = {}
    for t, v in zip(tickers, values, strict=True):
        v = float(v)
        if (not keep_nan and math.isnan(v)) or (not keep_zero and (v == 0 or math.isnan(v))):
            continue
        out[t] = v
    return out


def _apply_day(state, day, today, marks, decisions, risk_hook) -> DayResult:
    prev = state.last_date
    fills: list[tuple[str, Fill]] = []
    flows = {s.name: 0.0 for s in state.strategies}
    rebalance = None
    if prev is None:
        rebalance = _fund_initial(state, marks, flows)
    elif _rebalance_due(state, day, prev, marks):
        trigger = "periodic" if state.rebalance_trigger == "periodic" else "threshold"
        rebalance = rebalance_cash(state, day, today, marks, flows, fills, trigger)
    for s in state.strategies:
        if not s.active or s.pending is None:
            continue
        if is_period_start(s.frequency, day, prev):
            scaled = {t: w * state.leverage_target for t, w in s.pending.items()}
            for f in s.book.rebalance_to(scaled, today, day, s.execution, "signal"):
                fills.append((s.name, f))
    if risk_hook is not None:
        fills.extend(risk_hook(day, state, marks))
    for s in state.strategies:
        s.pending, s.pending_date = decisions.get(s.name, {}), day
    state.last_date = day
    strategy_days, portfolio_day = _snapshot(state, marks, flows)
    return DayResult(day, strategy_days, portfolio_day, fills, rebalance)


def _rebalance_due(state: PortfolioState, day: date, prev: date, marks) -> bool:
    if state.rebalance_trigger == "periodic":
        return is_period_start(state.rebalance_frequency, day, prev)
    if state.rebalance_trigger == "threshold":
        equities = {s.name: s.book.equity(marks) for s in state.strategies}
        total = sum(equities.values())
        targets = _target_shares(state)
        return total > 0 and any(
            abs(equities[s.name] / total - targets[s.name]) > state.rebalance_threshold
            for s in state.strategies
            if s.active
        )
    return False


def _target_shares(state: PortfolioState) -> dict[str, float]:
    return {s.name: s.allocation / state.leverage_target for s in state.strategies}


def _fund_initial(state: PortfolioState, marks, flows) -> RebalanceRecord:
    shares = _target_shares(state)
    for s in state.strategies:
        amount = state.initial_capital * shares[s.name]
        s.book.cash += amount
        flows[s.name] += amount
        s.last_equity = 0.0
    return RebalanceRecord(
        trigger="initial",
        weights_before={s.name: 0.0 for s in state.strategies},
        weights_after=shares,
        capital_moved=state.initial_capital,
        trades_count=0,
        cost=0.0,
    )


def rebalance_cash(state, day, today, marks, flows, fills, trigger) -> RebalanceRecord:
    """Move cash so every active book holds its target share of the active books' equity.

    Conservation: the books' total equity changes only by the costs of the sales that fund
    transfers (a book with too little cash sells pro rata, ``Book.raise_cash``).
    """
    equities = {s.name: s.book.equity(marks) for s in state.strategies}
    total = sum(equities.values())
    before = {n: (e / total if total else 0.0) for n, e in equities.items()}
    active = [s for s in state.strategies if s.active]
    active_total = sum(equities[s.name] for s in active)
    alloc_total = sum(s.allocation for s in active)
    cost = 0.0
    n_fills = 0
    deltas = (
        {s.name: active_total * s.allocation / alloc_total - equities[s.name] for s in active}
        if alloc_total > 0
        else {}
    )
    # Givers first: raise the cash they hand over, then pay the receivers what was raised.
    pool = 0.0
    for s in active:
        give = -deltas[s.name]
        if give <= 0:
            continue
        shortfall = give - s.book.cash
        if shortfall > 1e-12 * max(1.0, give):
            for f in s.book.raise_cash(shortfall, today, day, s.execution, "rebalance"):
                fills.append((s.name, f))
                cost += f.cost
                n_fills += 1
        give = min(give, max(s.book.cash, 0.0))
        s.book.cash -= give
        flows[s.name] -= give
        pool += give
    wanted = sum(d for d in deltas.values() if d > 0)
    for s in active:
        if deltas[s.name] > 0 and wanted > 0:
            amount = pool * deltas[s.name] / wanted
            s.book.cash += amount
            flows[s.name] += amount
    after_total = sum(s.book.equity(marks) for s in state.strategies)
    after = {
        s.name: (s.book.equity(marks) / after_total if after_total else 0.0)
        for s in state.strategies
    }
    return RebalanceRecord(trigger, before, after, pool, n_fills, cost)


def _snapshot(state: PortfolioState, marks, flows) -> tuple[list[StrategyDay], PortfolioDay]:
    equities = [s.book.equity(marks) for s in state.strategies]
    total = math.fsum(equities)
    days = []
    net_qty: dict[str, float] = {}
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
        for t, h in s.book.holdings.items():
            net_qty[t] = net_qty.get(t, 0.0) + h.quantity
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
            )
        )
    net_mv = np.array(
        [q * marks[t] * mult[t] for t, q in net_qty.items() if abs(q) > 1e-12], dtype=float
    )
    long_mv = float(net_mv[net_mv > 0].sum()) if net_mv.size else 0.0
    short_mv = float(-net_mv[net_mv < 0].sum()) if net_mv.size else 0.0
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
