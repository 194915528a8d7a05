"""Stress tests of a portfolio's books as the database holds them (``risk.engine.stress``).

``stress_run`` replays today's books through a window of stored history, in *hold* mode
(today's positions, no trading: the engine's ``hold_pnl`` and ``limits_on_path``) or *run*
mode (the strategies trade through the window from today's state with the risk manager
on). Run mode appends the window's scenario prices (today's marks moved as the window's
closes moved, ``scenario_closes``) after today's stored closes, on the business days
after the last applied bar, and applies them with the update path's own engine
(``portfolio.engine.cycle.apply_dates``) and risk manager (``RiskManagerSession.hook``) on
a state loaded from the database. Nothing it computes is written back but the
``ScenarioRun`` row: no trade, snapshot, violation or alert. Its signals see today's real
history followed by the scenario, so a 200-day momentum lookback is filled on day one.

``shock_run`` values an instant ``Shock`` on today's books. Every result is stored as a
``ScenarioRun`` (``scenario_store``) with the state version it was computed on.
"""

from __future__ import annotations

import logging
import math
import time
from copy import deepcopy
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from portfolio import selectors
from portfolio.engine.cycle import apply_dates
from portfolio.engine.state import PortfolioState
from portfolio.models import Portfolio, StateVersion, Strategy
from portfolio.services.books import state_load, strategy_targets
from risk.engine.stress import (
    Shock,
    WindowPath,
    hold_pnl,
    limits_on_path,
    path_worst_drawdown,
    shock_relatives,
    window_relatives,
)
from risk.models import ScenarioRun, ShockScenario
from risk.services.session import RiskManagerSession, instrument_groups, risk_session_open

log = logging.getLogger(__name__)


class ScenarioError(ValueError):
    """A scenario that cannot be computed, with the reason (shown as is)."""


@dataclass
class Books:
    """A portfolio's books at its last applied bar, with the stored closes through it."""

    portfolio: Portfolio
    strategies: list[Strategy]
    state: PortfolioState
    closes: pd.DataFrame  # tradable tickers, through ``as_of``
    marks: dict[str, float]
    as_of: date
    risk: RiskManagerSession

    @property
    def equity(self) -> float:
        return math.fsum(s.book.equity(self.marks) for s in self.state.strategies)

    def quantities(self) -> dict[str, dict[str, float]]:
        return {
            s.name: {t: h.quantity for t, h in s.book.holdings.items()}
            for s in self.state.strategies
        }


def books_load(portfolio: Portfolio) -> Books:
    """Today's books of ``portfolio`` (raises ScenarioError before its first bar)."""
    as_of = portfolio.last_applied_date
    if as_of is None:
        raise ScenarioError(f"portfolio {portfolio.name} has no applied bar yet")
    strategies = list(portfolio.strategies.order_by("position_order", "id"))
    closes = selectors.price_frame(end=as_of)
    tradable = [t for t in selectors.tradable_tickers() if t in closes.columns]
    closes = closes[tradable]
    state = state_load(portfolio, strategies)
    risk = risk_session_open(portfolio, strategies, as_of, closes=closes)
    risk.state_apply(state)
    last = closes.ffill().iloc[-1]
    marks = {t: float(v) for t, v in last.items() if v == v}
    return Books(portfolio, strategies, state, closes, marks, as_of, risk)


def _iso_series(values, dates) -> dict[str, float]:
    return {d.isoformat(): float(v) for d, v in zip(dates, values, strict=True)}


def stress_hold(books: Books, path: WindowPath) -> dict:
    """Hold mode (``risk.engine.stress``): P&L per book and for the portfolio, the worst
    drawdown and the limits that fire."""
    pnl = hold_pnl(
        books=books.quantities(),
        marks=books.marks,
        multipliers=books.risk.multipliers,
        path=path,
    )
    fired = limits_on_path(
        state=books.state,
        path=path,
        marks=books.marks,
        rules=books.risk.rules,
        multipliers=books.risk.multipliers,
        returns=np.array(books.risk.window, dtype=float),
        window=books.risk.window_bars,
        peaks=books.risk.risk,
        groups=books.risk.groups,
    )
    equity0 = books.equity
    equities0 = {s.name: s.book.equity(books.marks) for s in books.state.strategies}
    return {
        "portfolio": {
            "pnl": _iso_series(pnl.portfolio, path.dates),
            "worst_drawdown": pnl.worst_drawdown(equity0),
            "final_pnl": float(pnl.portfolio.iloc[-1]),
            "worst_pnl": float(min(0.0, pnl.portfolio.min())),
            "equity0": equity0,
        },
        "strategies": {
            name: {
                "pnl": _iso_series(pnl.books[name], path.dates),
                "final_pnl": float(pnl.books[name].iloc[-1]),
                "worst_pnl": float(min(0.0, pnl.books[name].min())),
                "worst_drawdown": path_worst_drawdown(
                    equities0[name] + pnl.books[name].to_numpy(), equities0[name]
                ),
            }
            for name in pnl.books.columns
        },
        "limits_fired": [f.to_dict() for f in fired],
    }


def scenario_closes(books: Books, path: WindowPath) -> tuple[pd.DataFrame, list[date]]:
    """Today's stored closes followed by the window's scenario prices (every bar after the
    base) on the business days after ``as_of``, and those days."""
    future = [
        d.date()
        for d in pd.bdate_range(books.as_of + timedelta(days=1), periods=len(path.dates) - 1)
    ]
    last = books.closes.ffill().iloc[-1]
    rel = path.relatives.iloc[1:].reindex(columns=books.closes.columns).fillna(1.0)
    rows = rel.to_numpy() * last.to_numpy()
    extra = pd.DataFrame(rows, index=pd.DatetimeIndex(future), columns=books.closes.columns)
    return pd.concat([books.closes, extra]), future


def stress_trade(books: Books, path: WindowPath) -> dict:
    """Run mode (module docstring): the strategies and the risk manager trade through the
    window from today's state; P&L per book excludes the capital rebalances move."""
    if len(path.dates) < 2:
        raise ScenarioError("the window has a single bar: nothing to trade through")
    frame, future = scenario_closes(books, path)
    tradable = list(frame.columns)
    targets = {s.name: strategy_targets(s, frame, tradable) for s in books.strategies}
    session = risk_session_open(books.portfolio, books.strategies, future[-1], closes=frame)
    state = deepcopy(books.state)  # as loaded, the risk multipliers applied; hold never changes it
    equity0 = books.equity
    equities0 = {s.name: s.book.equity(books.marks) for s in state.strategies}
    results = apply_dates(state, frame, targets, future, risk_hook=session.hook)
    to_hist = dict(zip(future, path.dates[1:], strict=True))
    base = path.dates[0]
    portfolio = [0.0] + [r.portfolio.equity - equity0 for r in results]
    strategies = {}
    for i, (name, e0) in enumerate(equities0.items()):
        cum, prev, series = 0.0, e0, [0.0]
        for r in results:
            day = r.strategies[i]  # DayResult.strategies is in the state's book order
            cum += day.equity - prev - day.flow
            prev = day.equity
            series.append(cum)
        strategies[name] = series
    dates = [base] + [to_hist[r.date] for r in results]
    equity = equity0 + np.array(portfolio)
    fired = [
        {
            "limit_id": e.limit_id,
            "name": next((r.name for r in session.rules if r.id == e.limit_id), ""),
            "target": e.target,
            "severity": e.severity,
            "action": e.action,
            "first_date": to_hist[e.day].isoformat(),
            "first_value": e.value,
            "threshold": e.threshold,
            "message": e.message,
        }
        for e in session.events
        if e.kind == "opened"
    ]
    fired += [
        {
            "limit_id": None,
            "name": "stop-loss",
            "target": f"{e.strategy} {e.ticker}",
            "severity": "low",
            "action": "stop",
            "first_date": to_hist[e.day].isoformat(),
            "first_value": e.close,
            "threshold": e.stop,
            "message": e.message,
        }
        for e in session.stop_events
        if e.kind == "opened"
    ]
    trades = sum(len(r.fills) for r in results)
    return {
        "portfolio": {
            "pnl": _iso_series(portfolio, dates),
            "worst_drawdown": path_worst_drawdown(equity, equity0),
            "final_pnl": portfolio[-1],
            "worst_pnl": min(0.0, min(portfolio)),
            "equity0": equity0,
            "trades": trades,
        },
        "strategies": {
            name: {
                "pnl": _iso_series(series, dates),
                "final_pnl": series[-1],
                "worst_pnl": min(0.0, min(series)),
                "worst_drawdown": path_worst_drawdown(
                    equities0[name] + np.array(series), equities0[name]
                ),
            }
            for name, series in strategies.items()
        },
        "limits_fired": fired,
    }


def stress_compute(*, portfolio: Portfolio, start: date, end: date, mode: str = "hold") -> dict:
    """One window's result (``stress_hold`` or ``stress_trade``) with the window's facts."""
    if mode not in ("hold", "run"):
        raise ScenarioError(f"mode: must be hold or run, got {mode!r}")
    books = books_load(portfolio)
    if start > books.as_of:
        raise ScenarioError(f"the window starts after the last applied bar {books.as_of}")
    try:
        path = window_relatives(closes=books.closes, start=start, end=min(end, books.as_of))
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    body = stress_hold(books, path) if mode == "hold" else stress_trade(books, path)
    return {
        "mode": mode,
        "as_of": books.as_of.isoformat(),
        "window": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "base": path.dates[0].isoformat(),
            "last": path.dates[-1].isoformat(),
            "bars": len(path.dates),
        },
        "uncovered": path.uncovered,
    } | body


def shock_compute(*, portfolio: Portfolio, shock: Shock) -> dict:
    """An instant shock on today's books: P&L per book and portfolio, and the limits that
    would breach at the shocked marks."""
    books = books_load(portfolio)
    sectors = instrument_groups()["sector"]
    path = shock_relatives(
        shock=shock, tickers=list(books.closes.columns), sectors=sectors, day=books.as_of
    )
    body = stress_hold(books, path)
    moves = {t: float(path.relatives[t].iloc[1] - 1.0) for t in path.relatives.columns}
    held = {t for q in books.quantities().values() for t, v in q.items() if v}
    return {
        "as_of": books.as_of.isoformat(),
        "shock": {"market": shock.market, "sectors": shock.sectors, "tickers": shock.tickers},
        "moves": {t: m for t, m in sorted(moves.items()) if t in held},
        "portfolio": {
            "pnl": body["portfolio"]["final_pnl"],
            "return": body["portfolio"]["final_pnl"] / books.equity if books.equity else 0.0,
            "equity0": books.equity,
        },
        "strategies": {n: {"pnl": v["final_pnl"]} for n, v in body["strategies"].items()},
        "limits_fired": body["limits_fired"],
    }


def scenario_store(
    *,
    portfolio: Portfolio,
    kind: str,
    name: str,
    params: dict,
    trigger: str,
    compute,
) -> ScenarioRun:
    """Run ``compute()`` and store its result, or its error (a ScenarioError's message,
    otherwise the exception's type and message), as one ``ScenarioRun``."""
    version = StateVersion.objects.filter(portfolio=portfolio).values_list("version", flat=True)
    run = ScenarioRun(
        portfolio=portfolio,
        kind=kind,
        name=name,
        params=params,
        trigger=trigger,
        as_of=portfolio.last_applied_date,
        state_version=version.first() or 0,
    )
    t0 = time.perf_counter()
    try:
        run.result = compute()
    except ScenarioError as exc:
        run.status, run.error = ScenarioRun.Status.FAILED, str(exc)
    except Exception as exc:  # a bug must not lose the rest of the scheduled set
        log.exception("scenario %s %s failed", kind, name)
        run.status, run.error = ScenarioRun.Status.FAILED, f"{type(exc).__name__}: {exc}"
    run.seconds = time.perf_counter() - t0
    run.save()
    return run


def shock_from(row: ShockScenario) -> Shock:
    return Shock(market=row.market, sectors=dict(row.sectors), tickers=dict(row.tickers))


def stress_record(
    *, portfolio: Portfolio, name: str, start: date, end: date, mode: str, trigger: str
) -> ScenarioRun:
    """``stress_compute`` stored as a ``ScenarioRun``."""
    return scenario_store(
        portfolio=portfolio,
        kind=ScenarioRun.Kind.STRESS,
        name=name,
        params={"start": start.isoformat(), "end": end.isoformat(), "mode": mode},
        trigger=trigger,
        compute=lambda: stress_compute(portfolio=portfolio, start=start, end=end, mode=mode),
    )


def shock_record(*, portfolio: Portfolio, name: str, shock: Shock, trigger: str) -> ScenarioRun:
    """``shock_compute`` stored as a ``ScenarioRun``."""
    return scenario_store(
        portfolio=portfolio,
        kind=ScenarioRun.Kind.SHOCK,
        name=name,
        params={"market": shock.market, "sectors": shock.sectors, "tickers": shock.tickers},
        trigger=trigger,
        compute=lambda: shock_compute(portfolio=portfolio, shock=shock),
    )
