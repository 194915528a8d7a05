"""Portfolio rebalancing: when it fires (triggers) and how capital moves (methods).

Triggers (checked at step 2 of the daily cycle, in this order; at most one a day):

* ``manual``: an operator's request, applied at the first bar after the last bar the
  portfolio had applied when it was made (so it never trades at a price it has seen);
* ``periodic``: the ``trading_day``-th bar of each week/month/quarter (1 = the first bar);
  a period with fewer bars than that has no rebalance;
* ``threshold``: some active book's share of the active books' equity is more than
  ``threshold`` (absolute) away from its target share ``a_i / sum(a_active)``;
* ``risk_breach``: called by the risk manager (step 4) through ``rebalance``.

Every rebalance first asks the allocation method for new allocations
(``allocation.allocation_targets``), then moves capital so that every *active* book holds
``E_i* = E_active * a_i / sum(a_active)`` (paused books keep their capital), by one of:

* ``cash``: books above target hand over cash; a book short of cash sells every position
  pro rata to raise it (``Book.raise_cash``); receivers get the cash and invest it on their
  next trading day;
* ``proportional``: a book scales every position and its cash by ``E_i* / E_i``: givers
  sell the fraction ``(E_i - E_i*)/E_i`` of each position, receivers buy ``(E_i* - E_i)/E_i``
  more of each (shorts grow short);
* ``liquidate``: every active book closes everything, cash moves, and each book buys back
  the same composition (position value / equity) at its new size; the most trading.

Conservation: every method changes the books' total equity by exactly minus the costs of
the trades it makes (commission and slippage, ``Fill.cost``); cash only moves between books.
"""

from __future__ import annotations

import math
from dataclasses import replace

from portfolio.engine.allocation import allocation_targets
from portfolio.engine.book import Book, negligible
from portfolio.engine.state import DayContext, PortfolioState, RebalanceRecord, StrategyState

REASON = "rebalance"


def target_shares(state: PortfolioState) -> dict[str, float]:
    """Each active book's target share of the active books' equity."""
    active = [s for s in state.strategies if s.active]
    total = math.fsum(s.allocation for s in active)
    return {s.name: (s.allocation / total if total > 0 else 0.0) for s in active}


def drift(state: PortfolioState, marks) -> float:
    """``max_i |E_i / E_active - a_i / sum(a_active)|`` over the active books (0 if none)."""
    equities = {s.name: s.book.equity(marks) for s in state.strategies if s.active}
    total = math.fsum(equities.values())
    if not total > 0:
        return 0.0
    targets = target_shares(state)
    return max((abs(e / total - targets[n]) for n, e in equities.items()), default=0.0)


def trigger_due(state: PortfolioState, ctx: DayContext, bar_number: int) -> str | None:
    """The trigger that fires at this bar, or None (see the module docstring)."""
    m = state.manual
    if m is not None and (m.after_date is None or ctx.day > m.after_date):
        return "manual"
    if state.rebalance_trigger == "periodic":
        return "periodic" if bar_number == state.rebalance_trading_day else None
    if state.rebalance_trigger == "threshold":
        return "threshold" if drift(state, ctx.marks) > state.rebalance_threshold else None
    return None


def rebalance(
    state: PortfolioState, ctx: DayContext, trigger: str, execution: str | None = None
) -> RebalanceRecord:
    """Set new allocations by the portfolio's method, then move capital at today's close."""
    keys: tuple[str, ...] = ()
    if trigger == "manual" and state.manual is not None:
        keys = state.manual.keys
        execution = execution or state.manual.execution
        state.manual = None
    execution = execution or state.rebalance_execution
    names = [s.name for s in state.strategies]
    before_alloc = {s.name: s.allocation for s in state.strategies}
    decided = allocation_targets(
        state.allocation,
        names=names,
        static={s.name: s.static for s in state.strategies},
        current=before_alloc,
        active={s.name: s.active for s in state.strategies},
        history_days={s.name: s.history_days for s in state.strategies},
        returns=state.returns_window(),
        leverage_target=state.leverage_target,
    )
    for s in state.strategies:
        s.allocation = decided.allocations[s.name]
    record = move_capital(state, ctx, trigger, execution)
    record = replace(
        record,
        allocations_before=before_alloc,
        allocations_after=dict(decided.allocations),
        notes=dict(decided.notes),
        stats=dict(decided.stats),
        request_keys=keys,
    )
    ctx.rebalances.append(record)
    return record


def move_capital(
    state: PortfolioState, ctx: DayContext, trigger: str, execution: str = "cash"
) -> RebalanceRecord:
    """Move capital so each active book holds its target share (module docstring)."""
    marks = ctx.marks
    equities = {s.name: s.book.equity(marks) for s in state.strategies}
    total = math.fsum(equities.values())
    before = {n: (e / total if total else 0.0) for n, e in equities.items()}
    active = [s for s in state.strategies if s.active]
    active_total = math.fsum(equities[s.name] for s in active)
    shares = target_shares(state)
    deltas = (
        {s.name: active_total * shares[s.name] - equities[s.name] for s in active}
        if any(v > 0 for v in shares.values())
        else {}
    )
    n_fills_before, cost_before = len(ctx.fills), _cost(ctx)
    compositions = {}
    if execution == "liquidate":
        for s in active:
            compositions[s.name] = _composition(s.book, marks, equities[s.name])
            closes = {t: -h.quantity for t, h in s.book.holdings.items()}
            _trade_all(s, closes, ctx)
    pool = _collect(active, deltas, equities, execution, ctx)
    _distribute(active, deltas, pool, equities, execution, ctx)
    if execution == "liquidate":
        for s in active:
            target_equity = s.book.equity(marks)  # cash, and holdings without a bar today
            wanted = {t: w * target_equity for t, w in compositions[s.name].items()}
            _trade_all(s, _quantities(s.book, wanted, ctx.today, s.execution.whole_shares), ctx)
    after_total = math.fsum(s.book.equity(marks) for s in state.strategies)
    after = {
        s.name: (s.book.equity(marks) / after_total if after_total else 0.0)
        for s in state.strategies
    }
    return RebalanceRecord(
        trigger,
        before,
        after,
        pool,
        len(ctx.fills) - n_fills_before,
        _cost(ctx) - cost_before,
        method=execution,
    )


def _collect(active, deltas, equities, execution, ctx) -> float:
    """Givers raise and hand over their surplus; returns the cash pool."""
    pool = 0.0
    for s in active:
        give = -deltas.get(s.name, 0.0)
        if give <= 0:
            continue
        if execution == "proportional" and equities[s.name] > 0:
            f = min(1.0, give / equities[s.name])
            sells = {t: -h.quantity * f for t, h in s.book.holdings.items()}
            if s.execution.whole_shares:
                sells = {t: math.copysign(math.ceil(abs(q) - 1e-9), q) for t, q in sells.items()}
            _trade_all(s, sells, ctx)
        shortfall = give - s.book.cash
        if shortfall > 1e-12 * max(1.0, give):
            for f in s.book.raise_cash(shortfall, ctx.today, ctx.day, s.execution, REASON):
                ctx.fills.append((s.name, f))
        give = min(give, max(s.book.cash, 0.0))
        s.book.cash -= give
        ctx.flows[s.name] -= give
        pool += give
    return pool


def _distribute(active, deltas, pool, equities, execution, ctx) -> None:
    """Receivers get the pool pro rata to what they are owed (and, proportional, invest)."""
    wanted = math.fsum(d for d in deltas.values() if d > 0)
    if not wanted > 0:
        return
    for s in active:
        owed = deltas.get(s.name, 0.0)
        if owed <= 0:
            continue
        amount = pool * owed / wanted
        s.book.cash += amount
        ctx.flows[s.name] += amount
        if execution == "proportional" and equities[s.name] > 0:
            f = amount / equities[s.name]
            buys = {t: h.quantity * f for t, h in s.book.holdings.items()}
            if s.execution.whole_shares:
                buys = {t: float(math.trunc(q)) for t, q in buys.items()}
            _trade_all(s, buys, ctx)


RETIRE_REASON = "retire"


def retire_books(state: PortfolioState, ctx: DayContext) -> RebalanceRecord | None:
    """Wind down every retired book that still holds something (step 2, before any
    rebalance): close each position that has a close today (fills with reason
    ``retire``), then hand all of its cash to the active books pro rata to their
    allocations (``a_i / sum(a_active)``; a flow, so no return is counted on it). A
    position without a bar today is closed at the next bar that has one; with no active
    book to receive it, the cash waits in the retired book. Conservation as for every
    rebalance: total equity changes by minus the costs of the closing fills only. One
    ``RebalanceRecord`` (trigger ``retire``) when anything moved, else None."""
    retired = [s for s in state.strategies if s.retired and (s.book.holdings or s.book.cash)]
    if not retired:
        return None
    marks = ctx.marks
    equities = {s.name: s.book.equity(marks) for s in state.strategies}
    total = math.fsum(equities.values())
    before = {n: (e / total if total else 0.0) for n, e in equities.items()}
    n_fills_before, cost_before = len(ctx.fills), _cost(ctx)
    receivers = [s for s in state.strategies if s.active and s.allocation > 0]
    weight = math.fsum(s.allocation for s in receivers)
    pool = 0.0
    for s in retired:
        closes = {t: -h.quantity for t, h in s.book.holdings.items()}
        held = len(ctx.fills)
        _trade_all(s, closes, ctx)
        for i in range(held, len(ctx.fills)):
            name, f = ctx.fills[i]
            ctx.fills[i] = (name, replace(f, reason=RETIRE_REASON))
        if weight > 0 and s.book.cash != 0:
            give, s.book.cash = s.book.cash, 0.0
            ctx.flows[s.name] -= give
            pool += give
    for s in receivers:
        amount = pool * s.allocation / weight if weight > 0 else 0.0
        s.book.cash += amount
        ctx.flows[s.name] += amount
    if pool == 0.0 and len(ctx.fills) == n_fills_before:
        return None
    after_total = math.fsum(s.book.equity(marks) for s in state.strategies)
    after = {
        s.name: (s.book.equity(marks) / after_total if after_total else 0.0)
        for s in state.strategies
    }
    allocations = {s.name: s.allocation for s in state.strategies}
    return RebalanceRecord(
        "retire",
        before,
        after,
        pool,
        len(ctx.fills) - n_fills_before,
        _cost(ctx) - cost_before,
        method="liquidate",
        allocations_before=allocations,
        allocations_after=allocations,
        notes={
            s.name: "retired: positions closed, cash handed to the active books" for s in retired
        },
    )


def _composition(book: Book, marks, equity: float) -> dict[str, float]:
    if not equity > 0:
        return {}
    return {
        t: h.quantity * marks[t] * book.multiplier(t) / equity for t, h in book.holdings.items()
    }


def _quantities(book: Book, values: dict[str, float], closes, whole: bool) -> dict[str, float]:
    out = {}
    for t, v in values.items():
        close = closes.get(t, math.nan)
        if close > 0:
            held = book.holdings[t].quantity if t in book.holdings else 0.0
            out[t] = book.target_quantity(1.0, v, close, t, whole) - held
    return out


def _trade_all(s: StrategyState, quantities: dict[str, float], ctx: DayContext) -> None:
    """Trade each (ticker, signed quantity) that has a close today, sells first."""
    held = s.book.holdings
    orders = sorted(
        (t, q)
        for t, q in quantities.items()
        if ctx.today.get(t, 0) > 0 and not negligible(q, held[t].quantity if t in held else q)
    )
    orders.sort(key=lambda o: o[1] > 0)
    for t, q in orders:
        ctx.fills.append((s.name, s.book.trade(t, q, ctx.today[t], ctx.day, s.execution, REASON)))


def _cost(ctx: DayContext) -> float:
    return math.fsum(f.cost for _, f in ctx.fills)
