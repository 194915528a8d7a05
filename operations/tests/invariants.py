"""The book's invariants, recomputed from stored rows alone (issue 15, point 3).

Nothing here calls the engine or the services: positions are rebuilt by summing the stored
fills in execution order, marks are the stored closes carried forward, and every total is
summed again here. ``book_violations`` returns one line per broken invariant (empty when
they all hold), so a failing state-machine step says exactly which number is wrong.

Float rule. Where the update path computes a stored number the same way from other stored
numbers it is compared exactly: the portfolio's equity and cash are ``math.fsum`` of the
books' (a correctly rounded sum, so any order gives the same double), a position count is
an integer, the carried state (``Strategy.cash``, ``last_equity``...) is the last
snapshot's double, a fill's value is ``quantity x price x multiplier``. Everything rebuilt
along another path (positions from fills, equity from cash plus marked positions, netting,
the flows of a rebalance) is compared with ``TOL = 1e-9`` relative to the gross money
involved (``|cash| + sum |position value|``): the engine sums the same terms in another
order (longs and shorts apart), and a position closed to within the engine's 1e-9 units
noise guard (``portfolio.engine.book._is_zero``) leaves a residue in a plain running sum.
Rounding error of those sums is ~1e-16 relative; a real accounting error (a missed fill,
a cost counted twice, a book marked at the wrong close) is above 1e-6.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from portfolio.models import (
    Instrument,
    Portfolio,
    PortfolioSnapshot,
    Position,
    PriceBar,
    RebalanceEvent,
    Strategy,
    StrategySnapshot,
    Trade,
)

TOL = 1e-9
OPEN_UNITS = 1e-6  # a rebuilt quantity above this many units is an open position


@dataclass
class Pause:
    """An operator pause the machine made: committed after bar ``after`` (the portfolio's
    last applied date then), lifted by an operator resume after bar ``until``."""

    strategy: str
    after: date | None
    until: date | None = None
    lifted: bool = False  # resumed (``until`` None then: before the first bar)


@dataclass
class Ledger:
    """The stored rows of one portfolio, read once per check."""

    strategies: dict[int, str]
    snapshots: dict[date, dict[str, tuple]]  # date -> strategy -> StrategySnapshot fields
    portfolio_rows: list[tuple]
    trades: list[tuple]
    marks: dict[date, dict[str, float]]
    multipliers: dict[str, float]
    rebalances: dict[date, list[tuple]] = field(default_factory=dict)


_SNAP = ("equity", "cash", "long_exposure", "short_exposure", "positions_count")
_SNAP += ("realized_pnl", "status")
_PSNAP = ("date", "equity", "cash", "long_exposure", "short_exposure", "net_exposure")
_PSNAP += ("gross_exposure", "leverage", "positions_gross", "positions_net")
_TRADE = ("strategy__name", "instrument__ticker", "date", "side", "quantity", "price")
_TRADE += ("value", "cost", "realized_pnl", "reason")


def ledger_read(portfolio: Portfolio) -> Ledger:
    strategies = dict(Strategy.objects.filter(portfolio=portfolio).values_list("id", "name"))
    snapshots: dict[date, dict[str, tuple]] = defaultdict(dict)
    for name, d, *rest in StrategySnapshot.objects.filter(
        strategy__portfolio=portfolio
    ).values_list("strategy__name", "date", *_SNAP):
        snapshots[d][name] = tuple(rest)
    rows = list(
        PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date").values_list(*_PSNAP)
    )
    trades = list(
        Trade.objects.filter(strategy__portfolio=portfolio)
        .order_by("date", "id")
        .values_list(*_TRADE)
    )
    rebalances: dict[date, list[tuple]] = defaultdict(list)
    for d, *rest in RebalanceEvent.objects.filter(portfolio=portfolio).values_list(
        "date", "trigger", "trades_count", "cost"
    ):
        rebalances[d].append(tuple(rest))
    dates = [r[0] for r in rows]
    return Ledger(
        strategies=strategies,
        snapshots=dict(snapshots),
        portfolio_rows=rows,
        trades=trades,
        marks=_marks(dates),
        multipliers={
            t: float(m) for t, m in Instrument.objects.values_list("ticker", "multiplier")
        },
        rebalances=dict(rebalances),
    )


def _marks(dates: list[date]) -> dict[date, dict[str, float]]:
    """Each date's mark per ticker: its stored close that day, else its last before."""
    if not dates:
        return {}
    out, last = {}, {}
    bars = PriceBar.objects.filter(date__lte=dates[-1]).order_by("date")
    by_date: dict[date, list[tuple[str, float]]] = defaultdict(list)
    for ticker, d, close in bars.values_list("instrument__ticker", "date", "close"):
        by_date[d].append((ticker, float(close)))
    wanted = set(dates)
    for d in sorted(by_date):
        last.update(by_date[d])
        if d in wanted:
            out[d] = dict(last)
    return out


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= TOL * max(scale, 1.0)


def book_violations(portfolio: Portfolio, pauses: list[Pause]) -> list[str]:
    """Every broken invariant of the stored book, as readable lines (module docstring)."""
    portfolio.refresh_from_db()
    led = ledger_read(portfolio)
    out: list[str] = []
    names = sorted(led.strategies.values())
    held: dict[str, dict[str, float]] = {n: defaultdict(float) for n in names}
    traded: dict[str, dict[str, float]] = {n: defaultdict(float) for n in names}
    realized = dict.fromkeys(names, 0.0)
    by_date: dict[date, list[tuple]] = defaultdict(list)
    for t in led.trades:
        by_date[t[2]].append(t)
    prev: dict[str, tuple] | None = None
    prev_held: dict[str, dict[str, float]] = {n: {} for n in names}
    for row in led.portfolio_rows:
        d = row[0]
        day = led.snapshots.get(d, {})
        if sorted(day) != names:
            out.append(f"{d}: strategy snapshots for {sorted(day)}, expected {names}")
            prev = None
            continue
        fills = by_date.get(d, [])
        out += _fills_check(d, fills, prev_held, pauses, led.multipliers)
        for name, ticker, _, side, qty, _, _, _, pnl, _ in fills:
            held[name][ticker] += qty if side == "buy" else -qty
            traded[name][ticker] += qty
            realized[name] += pnl
        marks = led.marks.get(d, {})
        out += _books_check(d, day, held, traded, realized, marks, led.multipliers)
        out += _portfolio_check(row, day, held, marks, led.multipliers)
        out += _flows_check(d, day, prev, prev_held, fills, marks, led, portfolio)
        out += _rebalance_check(d, fills, led.rebalances.get(d, []))
        out += _pauses_check(d, day, pauses)
        prev = day
        prev_held = {n: {t: q for t, q in held[n].items() if abs(q) > OPEN_UNITS} for n in names}
    out += _stored_state_check(portfolio, led, held, traded)
    return out


def _fills_check(d, fills, prev_held, pauses, mults) -> list[str]:
    """A fill's value is quantity x price x multiplier; a strategy under an operator pause
    fills nothing but the risk manager's own cuts (``risk.engine.manager``: a liquidation
    or a portfolio-scope reduce scales every book, paused ones included), which only ever
    shrink a position."""
    out = []
    paused = {p.strategy for p in pauses if _in(d, p)}
    for name, ticker, _, side, qty, price, value, *_, reason in fills:
        if value != qty * price * mults.get(ticker, 1.0):
            out.append(f"{d} {name} {ticker}: value {value!r} != quantity x price")
        if name not in paused:
            continue
        before = prev_held.get(name, {}).get(ticker, 0.0)
        signed = qty if side == "buy" else -qty
        shrinks = before * signed < 0 and qty <= abs(before) * (1 + TOL)
        if reason != "risk_action" or not shrinks:
            out.append(
                f"{d} {name}: operator-paused strategy traded {side} {qty} {ticker} ({reason})"
            )
    return out


def _in(d: date, p: Pause) -> bool:
    if p.lifted and (p.until is None or d > p.until):
        return False
    return p.after is None or d > p.after


def _marked(held: dict[str, float], marks, mults) -> tuple[float, float]:
    long_mv = short_mv = 0.0
    for t, q in held.items():
        mv = q * marks[t] * mults.get(t, 1.0)
        long_mv, short_mv = (long_mv + mv, short_mv) if mv >= 0 else (long_mv, short_mv - mv)
    return long_mv, short_mv


def _books_check(d, day, held, traded, realized, marks, mults) -> list[str]:
    """Per book: cash plus its positions (rebuilt from fills) marked at the close of ``d``
    is its stored equity; the stored exposures, position count and realized P&L agree."""
    out = []
    for name, (equity, cash, long_x, short_x, count, pnl, _) in day.items():
        long_mv, short_mv = _marked(held[name], marks, mults)
        scale = abs(cash) + long_mv + short_mv
        if not _close(cash + long_mv - short_mv, equity, scale):
            rebuilt = cash + long_mv - short_mv
            out.append(f"{d} {name}: cash + marked positions {rebuilt!r} != equity {equity!r}")
        if not (_close(long_mv, long_x, scale) and _close(short_mv, short_x, scale)):
            out.append(f"{d} {name}: exposures {long_x!r}/{short_x!r} != {long_mv!r}/{short_mv!r}")
        n_open = sum(1 for q in held[name].values() if abs(q) > OPEN_UNITS)
        if n_open != count:
            out.append(f"{d} {name}: {count} positions stored, {n_open} rebuilt from fills")
        if not _close(realized[name], pnl, scale):
            out.append(f"{d} {name}: realized P&L {pnl!r} != sum of fills {realized[name]!r}")
    return out


def _portfolio_check(row, day, held, marks, mults) -> list[str]:
    """The portfolio row is the sum of its books (exactly: both are ``fsum``) and its
    netted exposures are the books' positions netted per ticker, marked."""
    d, equity, cash, long_x, short_x, net_x, gross_x, leverage, n_gross, n_net = row
    out = []
    if equity != math.fsum(v[0] for v in day.values()):
        out.append(f"{d}: portfolio equity {equity!r} != sum of book equities")
    if cash != math.fsum(v[1] for v in day.values()):
        out.append(f"{d}: portfolio cash {cash!r} != sum of book cash")
    if n_gross != sum(v[4] for v in day.values()):
        out.append(f"{d}: positions_gross {n_gross} != sum of the books' counts")
    net: dict[str, float] = defaultdict(float)
    for positions in held.values():
        for t, q in positions.items():
            net[t] += q
    net = {t: q for t, q in net.items() if abs(q) > OPEN_UNITS}
    long_mv, short_mv = _marked(net, marks, mults)
    scale = abs(cash) + sum(
        abs(q) * marks[t] * mults.get(t, 1.0) for h in held.values() for t, q in h.items()
    )
    checks = {
        "long_exposure": (long_x, long_mv),
        "short_exposure": (short_x, short_mv),
        "net_exposure": (net_x, long_mv - short_mv),
        "gross_exposure": (gross_x, long_mv + short_mv),
        "equity (cash + netted positions)": (equity, cash + long_mv - short_mv),
    }
    for label, (stored, rebuilt) in checks.items():
        if not _close(stored, rebuilt, scale):
            out.append(f"{d}: portfolio {label} {stored!r} != {rebuilt!r} rebuilt")
    if equity > 0 and not math.isclose(leverage, gross_x / equity, rel_tol=TOL, abs_tol=TOL):
        out.append(f"{d}: leverage {leverage!r} != gross / equity")
    if n_net != len(net):
        out.append(f"{d}: positions_net {n_net} != {len(net)} netted tickers")
    return out


def _flows_check(d, day, prev, prev_held, fills, marks, led: Ledger, portfolio) -> list[str]:
    """Money is conserved. A fill at the close moves a book's equity by minus its cost, so
    ``flow_i = E_i(t) - (cash_i(t-1) + positions_i(t-1) marked at t) + costs_i(t)`` is the
    capital a rebalance moved into book i: the flows sum to 0 (to the initial capital on
    the funding bar), and are all 0 on a bar without a rebalance."""
    costs: dict[str, float] = defaultdict(float)
    for name, *_, cost, _, _ in fills:
        costs[name] += cost
    flows, scale = {}, 0.0
    for name, (equity, *_) in day.items():
        cash_prev = prev[name][1] if prev is not None else 0.0
        long_mv, short_mv = _marked(prev_held[name], marks, led.multipliers)
        flows[name] = equity - (cash_prev + long_mv - short_mv) + costs[name]
        scale += abs(cash_prev) + long_mv + short_mv + abs(equity)
    expected = float(portfolio.initial_capital) if prev is None else 0.0
    out = []
    moved = math.fsum(flows.values())
    if not _close(moved, expected, scale):
        out.append(f"{d}: capital moved between books sums to {moved!r}, not {expected}")
    if prev is not None and d not in led.rebalances:
        into = {n: f for n, f in flows.items() if not _close(f, 0.0, scale)}
        if into:
            out.append(f"{d}: money moved into books {into} with no rebalance")
    return out


def _rebalance_check(d, fills, events: list[tuple]) -> list[str]:
    """A rebalance event's trade count and cost are those of the rebalance fills."""
    mine = [f for f in fills if f[-1] == "rebalance"]
    count = sum(e[1] for e in events)
    cost = math.fsum(e[2] for e in events)
    rebuilt = math.fsum(f[7] for f in mine)
    out = []
    if count != len(mine):
        out.append(f"{d}: rebalance events count {count} trades, {len(mine)} stored")
    if not math.isclose(cost, rebuilt, rel_tol=TOL, abs_tol=TOL):
        out.append(f"{d}: rebalance cost {cost!r} != its fills' {rebuilt!r}")
    return out


def _pauses_check(d, day, pauses: list[Pause]) -> list[str]:
    """An operator pause holds until the operator resumes: the risk manager's recovery must
    not resume a strategy it did not pause."""
    return [
        f"{d} {p.strategy}: operator-paused strategy stored as {day[p.strategy][6]}"
        for p in pauses
        if _in(d, p) and day[p.strategy][6] != "paused"
    ]


def _stored_state_check(portfolio, led: Ledger, held, traded) -> list[str]:
    """What the next run loads (positions, cash, carried equity) is what the last
    snapshot and the fills say."""
    out = []
    stored = defaultdict(dict)
    for name, ticker, qty in Position.objects.filter(strategy__portfolio=portfolio).values_list(
        "strategy__name", "instrument__ticker", "quantity"
    ):
        stored[name][ticker] = qty
    for name in led.strategies.values():
        rebuilt = {t: q for t, q in held[name].items() if abs(q) > OPEN_UNITS}
        if sorted(rebuilt) != sorted(stored[name]):
            out.append(f"{name}: positions {sorted(stored[name])} != fills {sorted(rebuilt)}")
            continue
        for t, q in rebuilt.items():
            if not _close(stored[name][t], q, traded[name][t]):
                out.append(f"{name} {t}: position {stored[name][t]!r} != sum of fills {q!r}")
    if not led.portfolio_rows:
        if portfolio.last_applied_date is not None:
            out.append("a last applied date with no snapshot")
        return out
    last = led.portfolio_rows[-1]
    if portfolio.last_applied_date != last[0] or portfolio.last_equity != last[1]:
        carried = f"{portfolio.last_applied_date} {portfolio.last_equity!r}"
        out.append(f"portfolio state {carried} != the last snapshot")
    day = led.snapshots.get(last[0], {})
    for name, cash, last_equity in Strategy.objects.filter(portfolio=portfolio).values_list(
        "name", "cash", "last_equity"
    ):
        if name in day and (cash != day[name][1] or last_equity != day[name][0]):
            out.append(f"{name}: stored cash/equity {cash!r}/{last_equity!r} != last snapshot")
    return out
