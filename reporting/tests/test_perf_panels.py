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
