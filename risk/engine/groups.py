"""Sector and asset-class concentration: the group limits' measure and their reduce (pure).

A *group* is a sector name or an asset class. ``members`` maps each ticker to its group for
one grouping (``Instrument.sector`` or ``Instrument.asset_class``, read by the service once
per chunk and passed in as data; a ticker it does not name is in group ``"Unknown"``).

Measure, on positions netted across books (``risk.engine.exposure.net_positions``): with
``v_t = net quantity_t * mark_t * multiplier_t`` the signed netted value of ticker t and
``E`` the portfolio's equity (the sum of the books' equities at the marks),

* net basis (metric ``group_net_weight``): ``|sum_{t in g} v_t| / E``; a long and a short
  in the same group offset each other;
* gross basis (``group_gross_weight``): ``sum_{t in g} |v_t| / E``.

Every group of the grouping is measured (0.0 when nothing in it is held), so a violation
whose group was sold out resolves. A limit with a group applies to that group only; the
default limit (no group) to every group that no other enabled limit of the same scope and
metric names.

Reduce (``reduce_positions``): the excess ``X = (value - threshold) * E`` is taken off the
group's *reducible* tickers: on the net basis the tickers whose netted value is on the
group's net side (``v_t * sum v > 0``), on the gross basis every held ticker. With ``R`` the
sum of their ``|v_t|`` (only tickers with a close today can trade), each one's netted
position is cut by the fraction ``c = min(X / R, 1)``, that is by ``c * |net quantity_t|``
units, taken from the books holding it on its net side pro rata to their quantities (like
the per-ticker reduce). With no offsetting holdings this scales every holding in the group
by ``k = threshold / value``. Books with ``whole_shares`` cut a whole number of units,
rounded up (so the cap holds), never more than they hold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from portfolio.engine.book import negligible

UNKNOWN = "Unknown"
BASIS = {"group_net_weight": "net", "group_gross_weight": "gross"}


def group_exposures(
    net_quantity: Mapping[str, float],
    marks: Mapping[str, float],
    multipliers: Mapping[str, float],
    equity: float,
    members: Mapping[str, str],
) -> dict[str, dict[str, float]]:
    """``{"net": {group: weight}, "gross": {group: weight}}`` (module docstring), every
    group of ``members`` (and of the held tickers), in sorted group order."""
    values: dict[str, list[float]] = {g: [] for g in sorted(set(members.values()))}
    for ticker in sorted(net_quantity):
        v = net_quantity[ticker] * marks[ticker] * multipliers.get(ticker, 1.0)
        values.setdefault(members.get(ticker, UNKNOWN), []).append(v)
    out: dict[str, dict[str, float]] = {"net": {}, "gross": {}}
    for g in sorted(values):
        vs = values[g]
        ok = equity > 0
        out["net"][g] = abs(math.fsum(vs)) / equity if ok else 0.0
        out["gross"][g] = math.fsum(abs(v) for v in vs) / equity if ok else 0.0
    return out


def group_targets(rule, limits: Iterable, exposures: Mapping[str, float]):
    """``(group, value)`` pairs ``rule`` checks (module docstring): its own group, or for a
    default rule every group without a limit of its own."""
    if rule.group:
        yield rule.group, exposures.get(rule.group, 0.0)
        return
    named = {
        r.group for r in limits if r.scope == rule.scope and r.metric == rule.metric and r.group
    }
    for g in sorted(exposures):
        if g not in named:
            yield g, exposures[g]


def group_cuts(
    *,
    books: list[tuple[str, Mapping[str, float], bool]],
    net_quantity: Mapping[str, float],
    marks: Mapping[str, float],
    multipliers: Mapping[str, float],
    tradable: Mapping[str, float],
    members: Mapping[str, str],
    group: str,
    basis: str,
    threshold: float,
    equity: float,
) -> tuple[list[tuple[str, str, float]], float]:
    """The trades that bring ``group`` down to ``threshold`` (module docstring):
    ``[(book, ticker, signed quantity)]`` in ticker then book order, and the fraction ``c``
    cut. ``books`` is ``(name, ticker -> quantity, whole_shares)`` in book order;
    ``tradable`` the closes of today (a ticker without one is not cut)."""
    tickers = [t for t in sorted(net_quantity) if members.get(t, UNKNOWN) == group]
    v = {t: net_quantity[t] * marks[t] * multipliers.get(t, 1.0) for t in tickers}
    total = math.fsum(v.values())
    if basis == "net":
        value = abs(total)
        chosen = [t for t in tickers if v[t] * total > 0]
    else:
        value = math.fsum(abs(x) for x in v.values())
        chosen = [t for t in tickers if v[t] != 0]
    chosen = [t for t in chosen if tradable.get(t, math.nan) > 0]
    excess = value - threshold * equity
    reducible = math.fsum(abs(v[t]) for t in chosen)
    if not excess > 0 or not reducible > 0:
        return [], 0.0
    c = min(excess / reducible, 1.0)
    cuts = []
    for t in chosen:
        net = net_quantity[t]
        side = [(name, q[t], whole) for name, q, whole in books if q.get(t, 0.0) * net > 0]
        same = math.fsum(abs(q) for _, q, _ in side)
        units = c * abs(net)
        for name, q, whole in side:
            qty = -q * units / same
            if whole:
                qty = math.copysign(min(math.ceil(abs(qty) - 1e-9), abs(q)), qty)
            if not negligible(qty, q):
                cuts.append((name, t, qty))
    return cuts, c
