"""Stress tests of today's books: historical windows and hypothetical shocks (pure).

A *window* is a named span of stored history (``start`` to ``end``, inclusive). Its path is
the prices of today's tickers moved as they moved then: the window's first bar with any
close is the *base* (day 0, P&L 0), and on each bar ``t`` of the window a ticker's scenario
price is ``today's mark x close_t / close_base`` (closes forward-filled inside the window,
so a ticker without a bar on ``t`` keeps its last move). A ticker with no close at or
before the base (it did not trade yet) is *uncovered*: it is held at today's mark (a
relative of 1) and listed in ``WindowPath.uncovered``, so the page can say so.

*Hold* mode: today's positions, no trading. The P&L of book ``b`` on day ``t`` is
``sum_i q_bi * m_i * (P_it - P_i0)`` (quantity x multiplier x the price change since
today, ``P_i0`` today's mark); cash does not move. The portfolio's P&L is the sum over
books; its equity path ``E_t = E_0 + P&L_t``; the window's worst drawdown is
``min_t E_t / max(E_0, max_{s<=t} E_s) - 1`` (a negative fraction, 0 if it never fell
below today's equity).

*Which limits fire* (``limits_on_path``): the risk manager's own ``risk_step`` is run on
each scenario close with every limit turned into ``alert_only`` (so nothing trades), from
today's drawdown peaks (``RiskState.risk_peak`` and ``strategy_peaks``) and with no open
breach: a limit *fires* on the first bar its measure is beyond its threshold. Day 0 is
evaluated too, so a limit already in breach at today's marks shows as firing on the base
date. The return window starts as the stored trailing unit returns and takes each
scenario bar's unit returns (``portfolio.engine.cycle.unit_return``) after its step, as in
the daily cycle.

A *shock* is an instant move: ``market`` for every ticker, overridden by ``sectors``
(sector name -> move) and then by ``tickers`` (ticker -> move); moves are fractions
(-0.2 = -20 %). It is a one-bar path (``shock_relatives``), valued and checked as above.

*Run* mode lives in ``risk.services.scenarios``: the same scenario prices appended after
today's stored closes (``scenario_closes``), traded through by the strategies with the risk
manager on.
"""

from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd
from portfolio.engine.cycle import exposure_held, unit_return
from portfolio.engine.state import DayContext, PortfolioState

from risk.engine.manager import LimitRule, RiskState, limit_values, risk_step


@dataclass(frozen=True)
class WindowPath:
    """Scenario relatives of one window: ``relatives`` (bar dates x tickers, day 0 the base
    with every relative 1.0), and the tickers held flat for want of a base close."""

    dates: list[date]
    relatives: pd.DataFrame
    uncovered: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Shock:
    """An instant move: fractions by market, then sector, then ticker (the most specific
    wins)."""

    market: float = 0.0
    sectors: dict[str, float] = field(default_factory=dict)
    tickers: dict[str, float] = field(default_factory=dict)

    def move(self, ticker: str, sector: str | None) -> float:
        if ticker in self.tickers:
            return self.tickers[ticker]
        if sector is not None and sector in self.sectors:
            return self.sectors[sector]
        return self.market


@dataclass(frozen=True)
class HoldPnl:
    """Cumulative P&L in money: ``books`` (dates x books) and ``portfolio`` (dates)."""

    books: pd.DataFrame
    portfolio: pd.Series

    def worst_drawdown(self, equity0: float) -> float:
        return path_worst_drawdown(equity0 + self.portfolio.to_numpy(), equity0)


@dataclass(frozen=True)
class FiredLimit:
    """A limit beyond its threshold during a scenario: first bar, value then, worst value."""

    limit_id: int
    name: str
    scope: str
    target: str
    metric: str
    threshold: float
    severity: str
    action: str
    first_date: date
    first_value: float
    worst_value: float
    bars_beyond: int

    def to_dict(self) -> dict:
        return {
            "limit_id": self.limit_id,
            "name": self.name,
            "scope": self.scope,
            "target": self.target,
            "metric": self.metric,
            "threshold": self.threshold,
            "severity": self.severity,
            "action": self.action,
            "first_date": self.first_date.isoformat(),
            "first_value": self.first_value,
            "worst_value": self.worst_value,
            "bars_beyond": self.bars_beyond,
        }


def window_relatives(*, closes: pd.DataFrame, start: date, end: date) -> WindowPath:
    """The window's relatives (module docstring) from ``closes`` (DatetimeIndex ascending,
    one column per ticker, NaN where there is no bar). Raises ValueError when the window
    holds no bar or ends before it starts."""
    if end < start:
        raise ValueError(f"window end {end} is before its start {start}")
    filled = closes.loc[: pd.Timestamp(end)].ffill()
    inside = closes.loc[pd.Timestamp(start) : pd.Timestamp(end)]
    inside = inside[inside.notna().any(axis=1)]
    if inside.empty:
        raise ValueError(f"no stored bar between {start} and {end}")
    path = filled.loc[inside.index]
    base = path.iloc[0]
    uncovered = sorted(t for t in path.columns if not base[t] > 0)
    rel = path.div(base.where(base > 0), axis=1).ffill()
    rel[uncovered] = 1.0
    return WindowPath(list(path.index.date), rel.fillna(1.0), uncovered)


def shock_relatives(
    *, shock: Shock, tickers: list[str], sectors: dict[str, str], day: date
) -> WindowPath:
    """A two-row path for an instant shock: day 0 (all 1.0) and the shocked bar
    (``1 + move``). Both rows carry ``day``; only the second is the shock."""
    row = {t: 1.0 + shock.move(t, sectors.get(t)) for t in tickers}
    rel = pd.DataFrame([dict.fromkeys(tickers, 1.0), row], columns=tickers)
    return WindowPath([day, day], rel)


def hold_pnl(
    *,
    books: dict[str, dict[str, float]],
    marks: dict[str, float],
    multipliers: dict[str, float],
    path: WindowPath,
) -> HoldPnl:
    """Hold-mode P&L (module docstring): ``books`` maps a book to its signed quantities,
    ``marks`` today's price per ticker. Sums are ``math.fsum`` (exact rounding)."""
    rel = path.relatives
    out = {}
    for name, quantities in books.items():
        held = [t for t, q in quantities.items() if q]
        columns = []
        for t in held:
            mark = marks[t]
            moved = mark * rel[t].to_numpy() if t in rel.columns else np.full(len(rel), mark)
            columns.append(quantities[t] * multipliers.get(t, 1.0) * (moved - mark))
        out[name] = [math.fsum(c[k] for c in columns) for k in range(len(rel))]
    frame = pd.DataFrame(out, index=path.dates, columns=list(books))
    total = [math.fsum(frame.iloc[k]) for k in range(len(frame))]
    return HoldPnl(frame, pd.Series(total, index=path.dates, dtype=float))


def path_worst_drawdown(equity: np.ndarray, equity0: float) -> float:
    """``min_t E_t / max(E_0, max_{s<=t} E_s) - 1`` (0 when it never falls below the peak)."""
    peaks = np.maximum.accumulate(np.maximum(np.asarray(equity, dtype=float), equity0))
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peaks > 0, equity / peaks - 1.0, 0.0)
    return min(0.0, float(dd.min())) if len(dd) else 0.0


def scenario_marks(*, marks: dict[str, float], path: WindowPath) -> list[dict[str, float]]:
    """Today's marks moved by each row of the path (tickers not in the path stay put)."""
    rows = path.relatives.to_dict("records")
    return [{t: m * row.get(t, 1.0) for t, m in marks.items()} for row in rows]


def limits_on_path(
    *,
    state: PortfolioState,
    path: WindowPath,
    marks: dict[str, float],
    rules: list[LimitRule],
    multipliers: dict[str, float],
    returns: np.ndarray,
    window: int,
    peaks: RiskState,
    groups: dict[str, dict[str, str]] | None = None,
) -> list[FiredLimit]:
    """The limits that fire holding ``state``'s books through ``path`` (module docstring).
    ``state`` is not changed (a copy is marked); ``returns`` the stored trailing unit
    returns (``T x N``, N the books in ``state`` order)."""
    state = deepcopy(state)
    n = len(state.strategies)
    alerting = [replace(r, action="alert_only") for r in rules]
    by_id = {r.id: r for r in rules}
    risk = RiskState(risk_peak=peaks.risk_peak, strategy_peaks=dict(peaks.strategy_peaks))
    rows = [list(r) for r in np.asarray(returns, dtype=float).reshape(-1, n)]
    navs0 = [s.nav for s in state.strategies]
    start: list[float] | None = None
    prev: tuple[list[float], dict[str, float]] | None = None
    fired: dict[tuple[int, str], dict] = {}
    for day, day_marks in zip(path.dates, scenario_marks(marks=marks, path=path), strict=True):
        equities = [s.book.equity(day_marks) for s in state.strategies]
        start = start or equities
        for s, nav0, e, e0 in zip(state.strategies, navs0, equities, start, strict=True):
            s.nav = nav0 * e / e0 if e0 > 0 else nav0  # no flows in hold mode
        ctx = DayContext(day=day, today=day_marks, marks=day_marks, flows={})
        u = np.array(rows[-window:], dtype=float).reshape(-1, n)
        m, _ = risk_step(state, ctx, risk, alerting, multipliers, u, window, groups=groups)
        for rule in alerting:
            for target, value in limit_values(rule, m, state, alerting):
                if rule.breached(value):
                    _record(fired, by_id[rule.id], target, day, value)
        if prev is not None:  # this bar's unit returns enter the window after its step
            rows.append(_unit_returns(state, prev, equities))
        prev = (equities, day_marks)
    found = (FiredLimit(**f) for f in fired.values())
    return sorted(found, key=lambda f: (f.first_date, f.name, f.target))


def _unit_returns(state: PortfolioState, prev, equities: list[float]) -> list[float]:
    """Each book's unit return on a hold bar: P&L over the prior equity, per unit of the
    exposure it held at the prior close (``unit_return``, ``exposure_held``)."""
    prev_equities, prev_marks = prev
    scale = state.exposure_scale * state.risk_scale
    out = []
    for s, e, e_prev in zip(state.strategies, equities, prev_equities, strict=True):
        long_mv, short_mv = s.book.exposures(prev_marks)
        x = exposure_held(scale * s.risk_scale, long_mv + short_mv, e_prev, s.active)
        r = (e - e_prev) / e_prev if e_prev > 0 else 0.0
        out.append(unit_return(r, x, e_prev))
    return out


def _record(fired: dict, rule: LimitRule, target: str, day: date, value: float) -> None:
    key = (rule.id, target)
    f = fired.get(key)
    if f is None:
        fired[key] = {
            "limit_id": rule.id,
            "name": rule.name,
            "scope": rule.scope,
            "target": target,
            "metric": rule.metric,
            "threshold": rule.threshold,
            "severity": rule.severity,
            "action": rule.action,
            "first_date": day,
            "first_value": value,
            "worst_value": value,
            "bars_beyond": 1,
        }
        return
    f["bars_beyond"] += 1
    worse = value > f["worst_value"] if rule.direction == "max" else value < f["worst_value"]
    if worse:
        f["worst_value"] = value
