"""risk.engine.stress on hand-made books (no database): hold P&L, shocks by their most
specific rule, and the limits that fire along a path."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from portfolio.engine.book import Book, Execution, Holding
from portfolio.engine.state import PortfolioState, StrategyState
from risk.engine.manager import LimitRule, RiskState
from risk.engine.stress import Shock, WindowPath, hold_pnl, limits_on_path, shock_relatives

DAYS = [date(2020, 3, d) for d in (2, 3, 4, 5)]


def _state(quantity: float = 10.0, cash: float = 0.0) -> PortfolioState:
    book = Book(cash=cash, holdings={"AAA": Holding(quantity, 100.0, date(2020, 1, 2))})
    s = StrategyState(
        name="s", allocation=1.0, active=True, frequency="daily", execution=Execution(), book=book
    )
    return PortfolioState(
        initial_capital=1000.0,
        leverage_target=1.0,
        strategies=[s],
        rebalance_trigger="manual",
        rebalance_frequency="monthly",
    )


def _path(*relatives: float) -> WindowPath:
    return WindowPath(DAYS[: len(relatives)], pd.DataFrame({"AAA": relatives}))


def _drawdown_rule(threshold: float = -0.10) -> LimitRule:
    return LimitRule(
        id=1,
        name="max_drawdown",
        scope="portfolio",
        metric="drawdown",
        direction="min",
        threshold=threshold,
        severity="critical",
        action="liquidate_all",
    )


def test_hold_pnl_is_quantity_times_the_moved_price():
    # 10 units marked at 100, then 95, 85, 90: P&L 0, -50, -150, -100
    pnl = hold_pnl(
        books={"s": {"AAA": 10.0}, "flat": {}},
        marks={"AAA": 100.0},
        multipliers={"AAA": 1.0},
        path=_path(1.0, 0.95, 0.85, 0.90),
    )
    np.testing.assert_allclose(pnl.books["s"], [0, -50, -150, -100])
    np.testing.assert_allclose(pnl.books["flat"], [0, 0, 0, 0])
    np.testing.assert_allclose(pnl.portfolio, [0, -50, -150, -100])
    assert pnl.worst_drawdown(1000.0) == pytest.approx(-0.15)


def test_a_shock_takes_the_ticker_then_the_sector_then_the_market_move():
    shock = Shock(market=-0.05, sectors={"Tech": -0.2}, tickers={"BBB": 0.1})
    path = shock_relatives(
        shock=shock,
        tickers=["AAA", "BBB", "CCC"],
        sectors={"AAA": "Tech", "BBB": "Tech", "CCC": "Energy"},
        day=DAYS[0],
    )
    assert path.relatives.iloc[1].tolist() == pytest.approx([0.8, 1.1, 0.95])
    assert path.relatives.iloc[0].tolist() == [1.0, 1.0, 1.0]


def test_a_drawdown_limit_fires_on_the_first_bar_beyond_it_and_nothing_trades():
    # equity 1000 -> 950 (-5 %) -> 850 (-15 %, fires) -> 900 (-10 %: not below -10 %)
    state = _state()
    fired = limits_on_path(
        state=state,
        path=_path(1.0, 0.95, 0.85, 0.90),
        marks={"AAA": 100.0},
        rules=[_drawdown_rule()],
        multipliers={"AAA": 1.0},
        returns=np.zeros((0, 1)),
        window=60,
        peaks=RiskState(risk_peak=1000.0),
    )
    assert len(fired) == 1
    f = fired[0]
    assert (f.name, f.target, f.first_date) == ("max_drawdown", "", DAYS[2])
    assert f.first_value == pytest.approx(-0.15) and f.worst_value == pytest.approx(-0.15)
    assert f.bars_beyond == 1 and f.action == "liquidate_all"  # reported, not taken
    assert state.strategies[0].book.holdings["AAA"].quantity == 10.0  # the state is untouched


def test_the_drawdown_is_measured_from_the_stored_risk_peak():
    # today's equity 1000 is already 5 % under a stored peak of 1052.63: -10 % at 0.9474
    fired = limits_on_path(
        state=_state(),
        path=_path(1.0, 0.96, 0.94),
        marks={"AAA": 100.0},
        rules=[_drawdown_rule()],
        multipliers={"AAA": 1.0},
        returns=np.zeros((0, 1)),
        window=60,
        peaks=RiskState(risk_peak=1000.0 / 0.95),
    )
    assert [f.first_date for f in fired] == [DAYS[2]]  # 940 / 1052.6 - 1 = -10.7 %


def test_a_limit_that_never_breaches_does_not_fire():
    fired = limits_on_path(
        state=_state(),
        path=_path(1.0, 0.95, 0.85),
        marks={"AAA": 100.0},
        rules=[_drawdown_rule(-0.5)],
        multipliers={"AAA": 1.0},
        returns=np.zeros((0, 1)),
        window=60,
        peaks=RiskState(risk_peak=1000.0),
    )
    assert fired == []
