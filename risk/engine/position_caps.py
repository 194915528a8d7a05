"""The lasting cap of a ``reduce_position`` violation (the spec's "Low: position size
breach -> reduce specific position").

A position-scope breach (a ticker's net weight above its limit) whose action is
``reduce_position`` cuts the books on the net side pro rata down to the limit, as
``reduce_positions`` does (``manager._reduce_ticker``), and records per book it cut the
``|quantity|`` left: ``OpenBreach.caps`` (book -> units, float64, stored with the breach).
While the violation is open that book's signal fills in the ticker, and the manager's
recovery trades (``manager._to_targets``), hold it to at most the cap
(``portfolio.engine.caps``), so a signal that wants more does not breach again. A bar on
which the limit is beyond its threshold anyway (the price rose, or a book without a cap
bought) cuts again and lowers the caps of the books cut; several open breaches capping one
(book, ticker) hold it to the smallest. Units, not weight: the reduced size stays put as
prices move (a weight cap would let the book buy back on every dip).

Resolution, as for every reduce: only when the limit would hold at full size. Full size is
the ticker's net weight with every capped book at its signal's size, its latest targets
(``pending``) at its current multipliers, ``q_i = w_i * T * m * m_i * E_i / (mark * mult)``
units (``T`` the exposure scale, ``m``/``m_i`` the risk multipliers, ``E_i`` the book's
equity at the marks); a capped book with no targets pending, or paused, counts what it
holds, and so does every uncapped book. Net weight ``|sum_i q_i * mark * mult| / E``
(``E`` the portfolio's equity), compared with the limit's recovery threshold after its
``cooldown_bars``. Then the caps lift and the books reach their targets at their next signal
fill: there is no recovery ramp for a cap (the ramp steps multipliers, which a cap never
touched), and at full size the limit holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from portfolio.engine.state import PortfolioState


def capping(rule) -> bool:
    """Whether ``rule`` (a ``manager.LimitRule``) cuts and caps a ticker on a breach."""
    return (
        rule.action == "reduce_position"
        and rule.scope == "position"
        and rule.metric == "ticker_weight"
    )


def caps_tighten(caps: dict[str, float], state: PortfolioState, ticker: str, fills) -> None:
    """Record in ``caps`` the ``|quantity|`` of ``ticker`` left in each book that ``fills``
    (``(book, Fill)`` pairs of the cut just made) cut: the smaller of it and any cap kept."""
    for name, f in fills:
        if f.ticker != ticker:
            continue
        s = next(s for s in state.strategies if s.name == name)
        h = s.book.holdings.get(ticker)
        held = abs(h.quantity) if h is not None else 0.0
        caps[name] = min(caps.get(name, math.inf), held)


def caps_apply(state: PortfolioState, open_breaches: Mapping, rules) -> None:
    """Put the open breaches' caps on the books (``StrategyState.position_caps``), the
    smallest where several cap one (book, ticker); books with none get none. Only the
    breaches of ``rules`` (the enabled limits) that still cap count: a limit disabled, or
    edited to another action, while its violation is open caps nothing any more."""
    capping_ids = {r.id for r in rules if capping(r)}
    per_book: dict[str, dict[str, float]] = {}
    for key in sorted(open_breaches):
        breach = open_breaches[key]
        if breach.limit_id not in capping_ids:
            continue
        for name, units in breach.caps.items():
            book = per_book.setdefault(name, {})
            book[breach.target] = min(book.get(breach.target, math.inf), units)
    for s in state.strategies:
        caps = per_book.get(s.name, {})
        s.position_caps = {t: caps[t] for t in sorted(caps)}


def full_size_weight(
    state: PortfolioState, marks: Mapping[str, float], ticker: str, caps: Mapping[str, float]
) -> float:
    """The ticker's net weight with the capped books at their signal's size (module
    docstring); NaN without a mark or a positive portfolio equity."""
    mark = marks.get(ticker, math.nan)
    total = math.fsum(s.book.equity(marks) for s in state.strategies)
    if not mark > 0 or not total > 0:
        return math.nan
    scale = state.exposure_scale * state.risk_scale
    values = []
    for s in state.strategies:
        h = s.book.holdings.get(ticker)
        q = h.quantity if h is not None else 0.0
        unit = mark * s.book.multiplier(ticker)
        equity = s.book.equity(marks)
        if s.name in caps and s.active and s.pending is not None and equity > 0:
            q = s.pending.get(ticker, 0.0) * scale * s.risk_scale * equity / unit
        values.append(q * unit)
    return abs(math.fsum(values)) / total
