"""The one update path on the bundled real data: accounting, no look-ahead, incremental
equals replay, resume after a kill, idempotence and the single-runner lock."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from operations import update as update_service
from operations.config import portfolio_configure
from operations.update import portfolio_apply, run_update
from portfolio import selectors
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.models import (
    Portfolio,
    PortfolioSnapshot,
    Position,
    RebalanceEvent,
    RunLock,
    Strategy,
    StrategySnapshot,
    Trade,
    UpdateRun,
)
from portfolio.services.config import allocation_spec_read
from portfolio.services.locks import lock_hold

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "strategy_allocation.yaml"
pytestmark = pytest.mark.django_db


def momentum_config(name="plain momentum", sma=None, frequency="monthly") -> dict:
    def child(lookback, allocation):
        return {
            "name": f"momentum_{lookback}",
            "allocation": allocation,
            "signal_type": "MomentumSignalV2",
            "parameters": {
                "lookback": lookback,
                "sma_filter": sma,
                "top_n": 5,
                "frequency": frequency,
            },
        }

    return {
        "portfolio": {
            "name": name,
            "initial_capital": 100000,
            "rebalancing": {"method": "periodic", "frequency": "monthly"},
        },
        "strategies": [child(60, 0.3), child(120, 0.4), child(200, 0.3)],
    }


def configure(data: dict, name: str | None = None) -> Portfolio:
    spec = parse_allocation_config(data, source="test.yaml")
    return portfolio_configure(spec=spec, source="test.yaml", name=name)


@pytest.fixture(scope="module")
def closes() -> pd.DataFrame:
    from portfolio.feeds import BundledProvider

    return BundledProvider().closes_frame()


def equity_frame(portfolio: Portfolio) -> pd.DataFrame:
    rows = StrategySnapshot.objects.filter(strategy__portfolio=portfolio).values_list(
        "date", "strategy__name", "equity"
    )
    frame = pd.DataFrame(list(rows), columns=["date", "name", "equity"])
    frame["equity"] = frame["equity"].astype(float)
    return frame.pivot(index="date", columns="name", values="equity").sort_index()


def portfolio_equity(portfolio: Portfolio) -> pd.Series:
    rows = PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date")
    return pd.Series({r.date: float(r.equity) for r in rows})


def trade_rows(portfolio: Portfolio, until: date | None = None) -> list[tuple]:
    qs = Trade.objects.filter(strategy__portfolio=portfolio)
    if until:
        qs = qs.filter(date__lte=until)
    return [
        (t.date, t.strategy.name, t.instrument.ticker, t.side, round(float(t.quantity), 6))
        for t in qs.select_related("strategy", "instrument").order_by("date", "id")
    ]


def numpy_momentum_portfolio(closes: pd.DataFrame, end: date) -> pd.Series:
    """An independent plain-numpy simulation of the accounting-check rules: three monthly
    top-5 momentum books (60/120/200 bars, no SMA filter) rebalanced to 30/40/30 of total
    equity on the first bar of each month; no costs; fractional shares."""
    prices = closes.drop(columns=["SP500"]).loc[: pd.Timestamp(end)]
    p = prices.to_numpy()
    dates = prices.index
    n, k = p.shape
    weights = np.array([0.3, 0.4, 0.3])
    lookbacks = [60, 120, 200]
    cash = 100000 * weights
    qty = np.zeros((3, k))
    totals = []
    decided = [np.zeros(k)] * 3
    for t in range(n):
        first_of_month = t > 0 and dates[t].month != dates[t - 1].month
        equity = cash + qty @ p[t]
        if first_of_month:  # portfolio rebalance: each book gets its share of the total
            equity = weights * equity.sum()
            for i in range(3):  # the monthly books trade toward yesterday's targets
                qty[i] = decided[i] * equity[i] / p[t]
                cash[i] = equity[i] - qty[i] @ p[t]
        totals.append((cash + qty @ p[t]).sum())
        new = []
        for lb in lookbacks:
            w = np.zeros(k)
            if t >= lb:
                score = p[t] / p[t - lb] - 1
                top = np.argsort(-score, kind="stable")[:5]
                w[top] = 0.2
            new.append(w)
        decided = new
    return pd.Series(totals, index=[d.date() for d in dates])


def test_three_monthly_momentum_books_match_an_independent_numpy_simulation(closes):
    portfolio = configure(momentum_config())
    end = date(1998, 12, 31)
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=end)
    ours = portfolio_equity(portfolio)
    expected = numpy_momentum_portfolio(closes, end)
    assert len(ours) == len(expected) == 2276
    assert_allclose(ours.to_numpy(), expected.to_numpy(), rtol=1e-9)
    # the books did trade, and on the first bar of each month only
    trade_dates = {t[0] for t in trade_rows(portfolio)}
    assert len(trade_dates) > 100
    assert all(d.day <= 4 for d in trade_dates)


def test_the_demo_portfolio_runs_all_five_strategies_and_sums_exactly(closes):
    portfolio = portfolio_configure(spec=allocation_spec_read(DEMO), source=str(DEMO))
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=date(1993, 12, 31))
    books = equity_frame(portfolio)
    total = portfolio_equity(portfolio)
    assert list(books.columns) == sorted(
        ["momentum_60", "momentum_120", "momentum_200", "mean_reversion_20", "trend_following_50"]
    )
    assert_allclose(books.sum(axis=1).to_numpy(), total.to_numpy(), rtol=1e-9)
    traded = set(
        Trade.objects.filter(strategy__portfolio=portfolio).values_list("strategy__name", flat=True)
    )
    assert traded == set(books.columns)
    reasons = set(
        Trade.objects.filter(strategy__portfolio=portfolio).values_list("reason", flat=True)
    )
    assert reasons <= {"signal", "rebalance"}
    # one rebalance on the first bar of each month after the first (plus initial funding)
    months = {(d.year, d.month) for d in total.index}
    assert RebalanceEvent.objects.filter(portfolio=portfolio, trigger="periodic").count() == (
        len(months) - 1
    )


def test_no_look_ahead_prices_after_t_change_nothing_up_to_t(closes):
    t, end = date(1995, 6, 30), date(1995, 12, 29)
    a = configure(momentum_config(frequency="daily"), name="a")
    portfolio_apply(portfolio=a, closes=closes, as_of=end)
    shocked = closes.copy()
    after = shocked.index > pd.Timestamp(t)
    rng = np.random.default_rng(7)
    shocked.loc[after] *= rng.uniform(0.5, 1.5, size=shocked.loc[after].shape)
    b = configure(momentum_config(frequency="daily"), name="b")
    portfolio_apply(portfolio=b, closes=shocked, as_of=end)
    ea, eb = portfolio_equity(a), portfolio_equity(b)
    upto = [d for d in ea.index if d <= t]
    assert_allclose(ea[upto].to_numpy(), eb[upto].to_numpy(), rtol=0, atol=0)
    assert trade_rows(a, t) == trade_rows(b, t)
    assert not np.allclose(ea.iloc[-1], eb.iloc[-1])  # the shock did change the future


def test_one_bar_at_a_time_equals_one_replay(closes):
    demo = allocation_spec_read(DEMO)
    end = date(1992, 3, 31)
    whole = portfolio_configure(spec=demo, source="demo", name="whole")
    portfolio_apply(portfolio=whole, closes=closes, as_of=end)
    steps = portfolio_configure(spec=demo, source="demo", name="steps")
    portfolio_apply(portfolio=steps, closes=closes, as_of=date(1992, 1, 31))
    stepped = 0
    for d in closes.loc["1992-02-01" : str(end)].index:
        stepped += portfolio_apply(portfolio=steps, closes=closes, as_of=d.date()).dates_applied
    assert stepped == 41  # Feb + Mar 1992 trading days
    assert_allclose(
        portfolio_equity(steps).to_numpy(), portfolio_equity(whole).to_numpy(), rtol=1e-9
    )
    assert trade_rows(steps) == trade_rows(whole)
    assert _positions(steps) == pytest.approx(_positions(whole), rel=1e-9)


def _positions(portfolio: Portfolio) -> dict:
    return {
        (p.strategy.name, p.instrument.ticker): float(p.quantity)
        for p in Position.objects.filter(strategy__portfolio=portfolio).select_related(
            "strategy", "instrument"
        )
    }


def test_a_run_killed_mid_replay_resumes_to_the_uninterrupted_state(closes, monkeypatch):
    demo = allocation_spec_read(DEMO)
    end = date(1992, 6, 30)
    clean = portfolio_configure(spec=demo, source="demo", name="clean")
    portfolio_apply(portfolio=clean, closes=closes, as_of=end, chunk_dates=100)

    killed = portfolio_configure(spec=demo, source="demo", name="killed")
    real_write = update_service.chunk_save
    calls = {"n": 0}

    def dying_write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")  # like a SIGINT in the middle of a chunk
        return real_write(*args, **kwargs)

    monkeypatch.setattr(update_service, "chunk_save", dying_write)
    with pytest.raises(KeyboardInterrupt):
        portfolio_apply(portfolio=killed, closes=closes, as_of=end, chunk_dates=100)
    killed.refresh_from_db()
    committed = PortfolioSnapshot.objects.filter(portfolio=killed).count()
    assert committed == 200  # two whole chunks, nothing of the third
    assert killed.last_applied_date == max(portfolio_equity(killed).index)
    monkeypatch.setattr(update_service, "chunk_save", real_write)
    portfolio_apply(portfolio=killed, closes=closes, as_of=end, chunk_dates=100)
    assert_allclose(
        portfolio_equity(killed).to_numpy(), portfolio_equity(clean).to_numpy(), rtol=1e-9
    )
    assert trade_rows(killed) == trade_rows(clean)
    assert _positions(killed) == pytest.approx(_positions(clean), rel=1e-9)


def test_run_update_applies_new_dates_once_and_is_idempotent():
    portfolio = portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    first = run_update(as_of=date(1990, 3, 30), load_prices=False)
    assert first.status == "success" and first.dates_applied == 63
    counts = (PortfolioSnapshot.objects.count(), Trade.objects.count())
    again = run_update(as_of=date(1990, 3, 30), load_prices=False)
    assert again.dates_applied == 0
    assert (PortfolioSnapshot.objects.count(), Trade.objects.count()) == counts
    later = run_update(as_of=date(1990, 4, 6), load_prices=False)
    assert later.dates_applied == 5
    portfolio.refresh_from_db()
    assert portfolio.last_applied_date == date(1990, 4, 6)
    run = UpdateRun.objects.get(pk=later.run_id)
    assert (run.status, run.first_date, run.dates_applied) == ("success", date(1990, 4, 2), 5)


def test_a_second_concurrent_update_says_already_running_and_changes_nothing():
    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    runs = UpdateRun.objects.count()
    with lock_hold(update_service.UPDATE_LOCK, owner="another update"):
        result = run_update(as_of=date(1990, 3, 30), load_prices=False)
    assert result.status == "skipped" and "already running" in result.message
    assert "another update" in result.message
    assert PortfolioSnapshot.objects.count() == 0 and UpdateRun.objects.count() == runs
    assert not RunLock.objects.exists()  # released


def test_a_lock_left_by_a_dead_process_is_taken_over():
    import socket

    from django.utils import timezone

    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    now = timezone.now()
    RunLock.objects.create(
        name="update",
        owner="killed run",
        pid=2**22 + 12345,
        host=socket.gethostname(),
        acquired_at=now,
        heartbeat_at=now,
    )
    assert run_update(as_of=date(1990, 1, 31), load_prices=False).status == "success"


def test_a_paused_strategy_keeps_its_capital_and_never_trades(closes):
    data = momentum_config()
    data["strategies"][2]["status"] = "paused"
    portfolio = configure(data)
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=date(1991, 12, 31))
    paused = Strategy.objects.get(portfolio=portfolio, name="momentum_200")
    assert not Trade.objects.filter(strategy=paused).exists()
    assert float(paused.cash) == pytest.approx(30000.0)


def test_the_update_lock_is_released_when_the_update_fails(monkeypatch):
    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")

    def boom(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(update_service, "portfolio_apply", boom)
    with pytest.raises(RuntimeError):
        run_update(as_of=date(1990, 1, 31), load_prices=False)
    assert not RunLock.objects.exists()
    run = UpdateRun.objects.latest("started_at")
    assert run.status == "failed" and "disk full" in run.error


def test_price_frame_returns_the_stored_closes():
    frame = selectors.price_frame(end=date(1990, 1, 5))
    assert frame.shape == (4, 21)
    assert frame.loc["1990-01-02", "AAPL"] == pytest.approx(0.264)
    assert os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith("settings_test")
