"""The performance and overview panels of issue 14: stored flows, drawdown shading,
Brinson against an equal-weight universe, the portfolio Sharpe figure and the exposure by
asset class, each read from the rendered page and compared with the engine computed
independently."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import RebalanceEvent, StrategySnapshot
from portfolio.services.config import allocation_spec_read
from risk.services import risk_spec_read

CONFIG = Path(__file__).resolve().parents[2] / "config"
pytestmark = pytest.mark.django_db


def _demo(as_of: date, *, risk: bool = False):
    portfolio = portfolio_configure(
        spec=allocation_spec_read(CONFIG / "strategy_allocation.yaml"),
        risk=risk_spec_read(CONFIG / "risk_limits.yaml") if risk else None,
        source="demo",
    )
    run_update(as_of=as_of, load_prices=False)
    portfolio.refresh_from_db()
    return portfolio


def _snapshots(portfolio) -> pd.DataFrame:
    rows = StrategySnapshot.objects.filter(strategy__portfolio=portfolio).values_list(
        "strategy__name", "date", "equity", "flow", "daily_return"
    )
    frame = pd.DataFrame(list(rows), columns=["strategy", "date", "equity", "flow", "r"])
    return frame.sort_values(["strategy", "date"]).reset_index(drop=True)


def test_stored_flows_are_the_rebalance_transfers_and_explain_the_book_returns():
    portfolio = _demo(date(1991, 6, 28))
    snaps = _snapshots(portfolio)
    events = pd.DataFrame(
        list(
            RebalanceEvent.objects.filter(portfolio=portfolio).values_list(
                "date", "trigger", "capital_moved"
            )
        ),
        columns=["date", "trigger", "capital_moved"],
    )
    assert (events["trigger"] == "periodic").sum() >= 5
    by_date = snaps.groupby("date")["flow"]
    # No event, no flow: exactly 0.0 on every other date.
    quiet = snaps[~snaps["date"].isin(set(events["date"]))]
    assert len(quiet) > 100 and (quiet["flow"] == 0.0).all()
    initial = events[events["trigger"] == "initial"].iloc[0]
    np.testing.assert_allclose(by_date.sum()[initial["date"]], initial["capital_moved"])
    for day, group in events[events["trigger"] != "initial"].groupby("date"):
        flows = snaps.loc[snaps["date"] == day, "flow"]
        moved = group["capital_moved"].sum()
        assert moved > 0
        # capital moves between books: out = in = what the event says moved
        np.testing.assert_allclose(flows[flows > 0].sum(), moved, rtol=1e-12)
        np.testing.assert_allclose(-flows[flows < 0].sum(), moved, rtol=1e-12)
        np.testing.assert_allclose(flows.sum(), 0.0, atol=1e-9 * moved)
    # r_t = (E_t - F_t) / E_t-1 - 1 is the stored return, bit for bit, on every later day.
    for _, book in snaps.groupby("strategy"):
        e, f, r = book["equity"].to_numpy(), book["flow"].to_numpy(), book["r"].to_numpy()
        assert np.array_equal((e[1:] - f[1:]) / e[:-1] - 1.0, r[1:])
        assert f[0] == e[0]  # the funding day: the whole equity came in


# --- Brinson by sector against the equal-weight universe (engine, hand-checked) -----------


def _three_stock_case(rp1: float = 0.0):
    """A, B (Tech) and C (Energy): the universe is 2/3 Tech, 1/3 Energy. 5 A (50) and 1 C
    (50) held from close 0 on 100 of equity, no cash.
    Day 1: A +10 %, B 0 %, C -10 %: P&L +5 and -5, r_p = 0; B_Tech = 5 %, B_Energy =
    -10 %, R_b = 2/3 * 5 % - 1/3 * 10 % = 0. w = (0.5, 0.5), r = (10 %, -10 %).
    Day 2: B +10 % (not held): r_p = 0, B_Tech = 5 %, R_b = 1/30; w = (0.55, 0.45)."""
    from reporting.engine.attribution import net_holdings, sector_brinson

    dates = pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-01-06"])
    closes = pd.DataFrame(
        {"A": [10.0, 11.0, 11.0], "B": [20.0, 20.0, 22.0], "C": [50.0, 45.0, 45.0]},
        index=dates,
    )
    fills = pd.DataFrame(
        {
            "ticker": ["A", "C"],
            "date": [dates[0], dates[0]],
            "side": ["buy", "buy"],
            "quantity": [5.0, 1.0],
        }
    )
    holdings = net_holdings(fills, dates, ["A", "B", "C"])
    return sector_brinson(
        holdings=holdings,
        closes=closes,
        sectors=pd.Series({"A": "Tech", "B": "Tech", "C": "Energy"}),
        equity=pd.Series([100.0, 100.0 * (1 + rp1), 100.0 * (1 + rp1)], index=dates),
        portfolio_returns=pd.Series([0.0, rp1, 0.0], index=dates),
    )


def test_sector_brinson_matches_the_hand_computed_effects_of_each_day():
    from reporting.engine.attribution import CASH_SEGMENT

    result = _three_stock_case()
    b = result.benchmark_weights
    np.testing.assert_allclose([b["Tech"], b["Energy"], b[CASH_SEGMENT]], [2 / 3, 1 / 3, 0])
    day1 = result.periods  # yearly: one period, the whole span
    # day 1: A = (w-b)(B-R_b): Tech (0.5-2/3)(0.05) = -1/120, Energy (1/6)(-0.1) = -1/60
    # S = b(r-B): Tech 2/3 * 0.05 = 1/30, Energy 0; I = (w-b)(r-B): Tech -1/120, Energy 0
    # day 2: A Tech (0.55-2/3)(0.05-1/30), Energy (0.45-1/3)(-1/30); S Tech 2/3 (0-0.05);
    # I Tech (0.55-2/3)(0-0.05). GRAP: day 1 x (1 + R_b,2) = 31/30, day 2 x (1 + r_p,1) = 1.
    k1 = 31 / 30
    alloc = (-1 / 120 - 1 / 60) * k1 + (0.55 - 2 / 3) * (0.05 - 1 / 30) + (0.45 - 1 / 3) * (-1 / 30)
    selection = (1 / 30) * k1 + (2 / 3) * (-0.05)
    interaction = (-1 / 120) * k1 + (0.55 - 2 / 3) * (-0.05)
    e = result.effects
    np.testing.assert_allclose(e.allocation.sum(), alloc, atol=1e-15)
    np.testing.assert_allclose(e.selection.sum(), selection, atol=1e-15)
    np.testing.assert_allclose(e.interaction.sum(), interaction, atol=1e-15)
    np.testing.assert_allclose(e.portfolio_return, 0.0)
    np.testing.assert_allclose(e.benchmark_return, 1 / 30)
    # active = allocation + selection + interaction, exactly, over the span and per period
    np.testing.assert_allclose(e.total.sum(), e.active_return, atol=1e-15)
    np.testing.assert_allclose(e.active_return, -1 / 30)
    p = day1.iloc[0]
    np.testing.assert_allclose(
        p["allocation"] + p["selection"] + p["interaction"], p["active_return"], atol=1e-15
    )


def test_sector_brinson_puts_the_fills_costs_in_the_cash_segment():
    from reporting.engine.attribution import CASH_SEGMENT

    # the stored return is 10 bp below what the holdings earned: costs, held in cash
    result = _three_stock_case(rp1=-0.001)
    e = result.effects
    assert e.selection[CASH_SEGMENT] == 0.0
    np.testing.assert_allclose(result.weights[CASH_SEGMENT].iloc[0], 0.0, atol=1e-15)
    np.testing.assert_allclose(e.interaction[CASH_SEGMENT], -0.001 * 31 / 30, rtol=1e-9)
    np.testing.assert_allclose(e.total.sum(), e.active_return, atol=1e-15)
    np.testing.assert_allclose(e.portfolio_return, -0.001)
