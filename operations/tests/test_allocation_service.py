"""Allocation and rebalancing through the one update path, on the bundled real data:
each method's weights reproduced directly, the drift trigger, the periodic rule across a
stop and resume, manual requests (service, API) and bad configuration."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from numpy.testing import assert_allclose
from scipy.optimize import minimize

from operations import update as update_service
from operations.tests.test_update import configure, momentum_config, portfolio_equity, trade_rows
from operations.update import portfolio_apply
from portfolio.engine.calendar import bar_numbers
from portfolio.models import (
    ConfigChange,
    Portfolio,
    PortfolioSnapshot,
    RebalanceEvent,
    RebalanceRequest,
    StrategySnapshot,
)
from portfolio.services.rebalance import rebalance_request
from portfolio.tests.test_allocation import skfolio_hrp_weights

pytestmark = pytest.mark.django_db
NAMES = ["momentum_60", "momentum_120", "momentum_200"]


@pytest.fixture(scope="module")
def closes() -> pd.DataFrame:
    from portfolio.feeds import BundledProvider

    return BundledProvider().closes_frame()


def dynamic_config(method: str, params: dict, name: str | None = None, **rebalancing) -> dict:
    data = momentum_config(name=name or f"{method} portfolio")
    data["portfolio"]["allocation_method"] = method
    data["portfolio"]["allocation_params"] = params
    data["portfolio"]["rebalancing"].update(rebalancing)
    return data


def unit_returns_before(portfolio: Portfolio, day: date, rows: int) -> np.ndarray:
    """The window the method saw at ``day``: the last ``rows`` bars before it, funding day
    excluded, each strategy's daily return divided by the exposure it held that day (no
    risk multipliers here, so the portfolio's exposure scale)."""
    snaps = PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date")
    dates = [s.date for s in snaps][1:]  # the funding day has no return
    scale = {s.date: s.exposure_scale for s in snaps}
    window = [d for d in dates if d < day][-rows:]
    rows_ = list(
        StrategySnapshot.objects.filter(strategy__portfolio=portfolio, date__in=window).values_list(
            "date", "strategy__name", "daily_return", "unit_return"
        )
    )
    frame = pd.DataFrame(rows_, columns=["date", "name", "r", "u"])
    r = frame.pivot(index="date", columns="name", values="r")[NAMES]
    u = frame.pivot(index="date", columns="name", values="u")[NAMES]
    expected = (r.to_numpy().T / np.array([scale[d] for d in r.index])).T
    assert_allclose(u.to_numpy(), expected, rtol=1e-15)  # the stored unit returns
    return expected


def last_event(portfolio: Portfolio) -> RebalanceEvent:
    """The latest periodic rebalance at which the method weighed all three strategies."""
    events = RebalanceEvent.objects.filter(portfolio=portfolio, trigger="periodic")
    chosen = [e for e in events.order_by("-date") if set(e.stats) == set(NAMES)]
    assert chosen, [e.notes for e in events]
    return chosen[0]


def _alloc(event: RebalanceEvent) -> np.ndarray:
    return np.array([event.allocations_after[n] for n in NAMES])


def _window(portfolio, event) -> np.ndarray:
    rows = int(event.stats[NAMES[0]]["window_days"])
    window = unit_returns_before(portfolio, event.date, rows)
    assert window.shape == (rows, 3)
    return window


END = date(1993, 6, 30)


def test_inverse_volatility_weights_equal_a_direct_computation(closes):
    portfolio = configure(dynamic_config("inverse_volatility", {"lookback": 63}))
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=END)
    event = last_event(portfolio)
    window = _window(portfolio, event)
    inv = 1.0 / window.std(axis=0, ddof=1)
    assert_allclose(_alloc(event), inv / inv.sum(), rtol=1e-12)
    # and the strategies' allocations in force are what the event set
    snap = StrategySnapshot.objects.filter(strategy__portfolio=portfolio, date=event.date)
    assert {s.strategy.name: s.allocation for s in snap} == pytest.approx(event.allocations_after)


def test_risk_parity_gives_equal_risk_contributions_on_real_returns(closes):
    portfolio = configure(dynamic_config("risk_parity", {"lookback": 126}))
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=END)
    event = last_event(portfolio)
    w = _alloc(event)
    cov = np.cov(_window(portfolio, event), rowvar=False, ddof=1)
    rc = w * (cov @ w) / math.sqrt(w @ cov @ w)
    assert_allclose(rc / rc.sum(), [1 / 3] * 3, atol=1e-6)
    assert_allclose(w.sum(), 1.0, rtol=1e-12)


def test_risk_budgets_set_each_strategy_s_share_of_the_variance(closes):
    budgets = {"momentum_60": 1, "momentum_120": 2, "momentum_200": 1}
    portfolio = configure(dynamic_config("risk_parity", {"risk_budgets": budgets}))
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=END)
    event = last_event(portfolio)
    w = _alloc(event)
    cov = np.cov(_window(portfolio, event), rowvar=False, ddof=1)
    rc = w * (cov @ w)
    assert_allclose(rc / rc.sum(), [0.25, 0.5, 0.25], atol=1e-6)


def test_performance_weights_follow_trailing_sharpe_within_floor_and_cap(closes):
    params = {"metric": "sharpe", "min_weight": 0.2, "max_weight": 0.45, "lookback": 63}
    portfolio = configure(dynamic_config("performance", params))
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=END)
    events = RebalanceEvent.objects.filter(portfolio=portfolio, trigger="periodic")
    for event in events:  # the strategies the method weighed (the others are still static)
        w = np.array([event.allocations_after[n] for n in event.stats])
        assert np.all(w >= 0.2 - 1e-12) and np.all(w <= 0.45 + 1e-12)
        assert_allclose(sum(event.allocations_after.values()), 1.0, rtol=1e-12)
    event = last_event(portfolio)
    window = _window(portfolio, event)
    sharpe = window.mean(axis=0) / window.std(axis=0, ddof=1) * math.sqrt(252)
    assert_allclose([event.stats[n]["score"] for n in NAMES], sharpe, rtol=1e-12)
    # inside the bounds the weights are proportional to the (floored) scores
    w = _alloc(event)
    free = (w > 0.2 + 1e-9) & (w < 0.45 - 1e-9)
    if free.sum() >= 2:
        ratios = w[free] / np.maximum(sharpe[free], 0)
        assert_allclose(ratios, ratios[0], rtol=1e-9)


def test_kelly_is_fractional_and_capped(closes):
    params = {"fraction": 0.5, "max_leverage": 1.0, "lookback": 126}
    portfolio = configure(dynamic_config("kelly", params))
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=END)
    events = RebalanceEvent.objects.filter(portfolio=portfolio, trigger="periodic")
    for event in events:
        assert sum(event.allocations_after.values()) <= 1.0 + 1e-12
        assert min(event.allocations_after.values()) >= 0.0
    event = last_event(portfolio)
    window = _window(portfolio, event)
    mu, cov = window.mean(axis=0), np.cov(window, rowvar=False, ddof=1)
    # An independent solution of the long-only Kelly problem: max mu'f - f'Sf/2, f >= 0,
    # by scipy's SLSQP (the engine solves it as non-negative least squares).
    solved = minimize(
        lambda f: -(mu @ f - 0.5 * f @ cov @ f),
        np.full(3, 0.1),
        jac=lambda f: -(mu - cov @ f),
        bounds=[(0, None)] * 3,
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    full = np.array([event.stats[n]["kelly_full"] for n in NAMES])
    assert_allclose(full, solved.x, rtol=1e-5, atol=1e-6)
    if np.all(full > 0):  # the long-only optimum is interior: it is S^-1 mu
        assert_allclose(full, np.linalg.solve(cov, mu), rtol=1e-6)
    half = 0.5 * solved.x
    expected = half if half.sum() <= 1.0 else half / half.sum()
    assert_allclose(_alloc(event), expected, rtol=1e-5, atol=1e-7)


def test_hierarchical_risk_budget_matches_skfolio_hrp_and_the_vol_target(closes):
    params = {"vol_target": 0.10, "max_leverage": 1.5, "lookback": 126}
    portfolio = configure(dynamic_config("hierarchical_risk_budget", params))
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=END)
    event = last_event(portfolio)
    window = _window(portfolio, event)
    w = _alloc(event)
    assert_allclose(w / w.sum(), skfolio_hrp_weights(window), atol=1e-12)
    vol = math.sqrt(252 * w @ np.cov(window, rowvar=False, ddof=1) @ w)
    assert vol == pytest.approx(0.10, rel=1e-9) or w.sum() == pytest.approx(1.5, rel=1e-12)


def test_until_min_history_the_static_weight_holds_and_the_note_says_so(closes):
    portfolio = configure(dynamic_config("inverse_volatility", {"min_history": 120}))
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=date(1990, 12, 31))
    early = RebalanceEvent.objects.filter(portfolio=portfolio, trigger="periodic").first()
    assert early.allocations_after == pytest.approx(
        {"momentum_60": 0.3, "momentum_120": 0.4, "momentum_200": 0.3}
    )
    assert "static weight until it has 120 days of history" in early.notes["momentum_60"]


def test_the_drift_trigger_fires_exactly_when_drift_first_exceeds_the_threshold(closes):
    data = momentum_config(name="drift")
    data["portfolio"]["rebalancing"] = {"method": "threshold", "threshold": 0.05}
    portfolio = configure(data)
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=date(1997, 12, 31))
    snaps = StrategySnapshot.objects.filter(strategy__portfolio=portfolio).values_list(
        "date", "strategy__name", "equity", "daily_return"
    )
    frame = pd.DataFrame(list(snaps), columns=["date", "name", "equity", "r"])
    equity = frame.pivot(index="date", columns="name", values="equity").astype(float)[NAMES]
    returns = frame.pivot(index="date", columns="name", values="r")[NAMES]
    # Costs are 0, so a day's trades move no value: the books' value at close t before any
    # rebalance is yesterday's equity grown by today's (flow-free) return.
    before = equity.shift(1) * (1 + returns)
    shares = before.div(before.sum(axis=1), axis=0).iloc[1:]
    drift = (shares - [0.3, 0.4, 0.3]).abs().max(axis=1)
    expected = set(drift.index[drift > 0.05])
    fired = set(
        RebalanceEvent.objects.filter(portfolio=portfolio, trigger="threshold").values_list(
            "date", flat=True
        )
    )
    assert len(fired) >= 3
    assert fired == expected
    assert (drift - 0.05).abs().min() > 1e-9  # no date sits on the edge within float noise
    for event in RebalanceEvent.objects.filter(portfolio=portfolio, trigger="threshold"):
        assert_allclose(
            [event.weights_before[n] for n in NAMES], shares.loc[event.date].to_numpy(), rtol=1e-9
        )


def _third_bars(closes: pd.DataFrame, start: date, end: date) -> set[date]:
    days = [d.date() for d in closes.index]
    numbers = bar_numbers(days, "monthly")
    return {d for d, n in zip(days, numbers, strict=True) if n == 3 and start < d <= end}


def test_a_monthly_rebalance_happens_once_a_month_on_its_trading_day_across_a_resume(
    closes, monkeypatch
):
    data = momentum_config(name="third bar")
    data["portfolio"]["rebalancing"] = {"method": "periodic", "trading_day": 3}
    end = date(1991, 6, 28)
    clean = configure(data, name="clean")
    portfolio_apply(portfolio=clean, closes=closes, as_of=end, chunk_dates=50)
    killed = configure(data, name="killed")
    real_write, calls = update_service.chunk_save, {"n": 0}

    def dying_write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(update_service, "chunk_save", dying_write)
    with pytest.raises(KeyboardInterrupt):
        portfolio_apply(portfolio=killed, closes=closes, as_of=end, chunk_dates=50)
    monkeypatch.setattr(update_service, "chunk_save", real_write)
    portfolio_apply(portfolio=killed, closes=closes, as_of=end, chunk_dates=50)
    expected = _third_bars(closes, date(1990, 1, 2), end)
    for p in (clean, killed):
        events = list(
            RebalanceEvent.objects.filter(portfolio=p, trigger="periodic").values_list(
                "date", flat=True
            )
        )
        assert len(events) == len(set(events)) == len(expected) == 18  # Jan 1990-Jun 1991
        assert set(events) == expected
    assert_allclose(
        portfolio_equity(killed).to_numpy(), portfolio_equity(clean).to_numpy(), rtol=1e-12
    )


def test_a_dynamic_method_one_bar_at_a_time_equals_one_replay(closes):
    data = dynamic_config("risk_parity", {"lookback": 40}, execution="proportional")
    end = date(1991, 3, 28)
    whole = configure(data, name="whole")
    portfolio_apply(portfolio=whole, closes=closes, as_of=end)
    steps = configure(data, name="steps")
    portfolio_apply(portfolio=steps, closes=closes, as_of=date(1991, 1, 31))
    for d in closes.loc["1991-02-01" : str(end)].index:
        portfolio_apply(portfolio=steps, closes=closes, as_of=d.date())
    assert_allclose(
        portfolio_equity(steps).to_numpy(), portfolio_equity(whole).to_numpy(), rtol=1e-12
    )
    assert trade_rows(steps) == trade_rows(whole)
    a = RebalanceEvent.objects.filter(portfolio=whole).order_by("date")
    b = RebalanceEvent.objects.filter(portfolio=steps).order_by("date")
    assert [(e.date, e.method) for e in a] == [(e.date, e.method) for e in b]
    for x, y in zip(a, b, strict=True):
        assert x.allocations_after == pytest.approx(y.allocations_after, rel=1e-12)


def test_a_manual_request_rebalances_once_at_the_next_bar_even_if_submitted_twice(closes):
    data = momentum_config(name="manual")
    data["portfolio"]["rebalancing"] = {"method": "manual"}
    portfolio = configure(data)
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=date(1991, 3, 28))
    first = rebalance_request(portfolio=portfolio, request_key="click-1", method="proportional")
    again = rebalance_request(portfolio=portfolio, request_key="click-1", method="proportional")
    assert first.created and not again.created and first.request.pk == again.request.pk
    assert RebalanceRequest.objects.count() == 1
    assert first.request.after_date == date(1991, 3, 28)
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=date(1991, 4, 30))
    (event,) = RebalanceEvent.objects.filter(portfolio=portfolio, trigger="manual")
    assert (event.date, event.method) == (date(1991, 4, 1), "proportional")  # the next bar
    request = RebalanceRequest.objects.get()
    assert (request.status, request.event_id) == ("applied", event.pk)
    assert event.weights_after == pytest.approx({n: w for n, w in zip(NAMES, [0.3, 0.4, 0.3])})
    rebalance_request(portfolio=portfolio, request_key="click-1")  # a late double click
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=date(1991, 5, 31))
    assert RebalanceEvent.objects.filter(portfolio=portfolio, trigger="manual").count() == 1


def test_the_rebalance_api_is_staff_only_and_idempotent(client, django_user_model, closes):
    portfolio = configure(momentum_config(name="api"))
    url = f"/api/portfolios/{portfolio.pk}/rebalance/"
    quant = django_user_model.objects.create_user("quant2", password="x-not-used-1")
    client.force_login(quant)
    assert client.post(url, {"request_key": "k"}).status_code == 403
    staff = django_user_model.objects.create_user("ops", password="x-not-used-2", is_staff=True)
    client.force_login(staff)
    one = client.post(url, {"method": "liquidate"}, HTTP_IDEMPOTENCY_KEY="form-7")
    two = client.post(url, {"method": "liquidate"}, HTTP_IDEMPOTENCY_KEY="form-7")
    assert (one.status_code, two.status_code) == (202, 200)
    assert one.json()["id"] == two.json()["id"] and one.json()["status"] == "pending"
    bad = client.post(url, {"method": "sell_everything"})
    assert bad.status_code == 400 and "method" in bad.json()
    assert RebalanceRequest.objects.count() == 1


FIXTURES = Path(__file__).parent / "fixtures"
SPEC = (FIXTURES / "spec_strategy_allocation.yaml").read_text()


@pytest.mark.parametrize(
    ("insert", "where", "rule"),
    [
        ("  allocation_method: optimal_f\n", "portfolio.allocation_method", "one of"),
        (
            "  allocation_method: risk_parity\n  allocation_params:\n    risk_budgets:\n"
            "      momentum_60: 1\n      momentum_120: -1\n      momentum_200: 1\n",
            "portfolio.allocation_params.risk_budgets.momentum_120",
            "must be > 0",
        ),
        (
            "  allocation_method: performance\n  allocation_params:\n"
            "    min_weight: 0.3\n    max_weight: 0.2\n",
            "portfolio.allocation_params.min_weight",
            "above the cap",
        ),
        (
            "  allocation_method: performance\n  allocation_params:\n    max_weight: 0.3\n",
            "portfolio.allocation_params.max_weight",
            "below 100%",
        ),
        (
            "  allocation_method: kelly\n  allocation_params:\n    fraction: 1.5\n",
            "portfolio.allocation_params.fraction",
            "<= 1",
        ),
        (
            "  allocation_method: inverse_volatility\n  allocation_params:\n    lookbak: 30\n",
            "portfolio.allocation_params.lookbak",
            "unknown key",
        ),
        (
            "  allocation_method: risk_parity\n  allocation_params:\n    risk_budgets:\n"
            "      momentum_60: 1\n",
            "portfolio.allocation_params.risk_budgets",
            "missing: momentum_120, momentum_200",
        ),
    ],
)
def test_bad_allocation_settings_name_the_field_and_change_nothing(tmp_path, insert, where, rule):
    call_command("load_config", allocation=str(FIXTURES / "spec_strategy_allocation.yaml"), risk="")
    before = (
        list(Portfolio.objects.values()),
        ConfigChange.objects.count(),
    )
    path = tmp_path / "alloc.yaml"
    path.write_text(
        SPEC.replace("  initial_capital: 100000\n", "  initial_capital: 100000\n" + insert)
    )
    with pytest.raises(CommandError) as err:
        call_command("load_config", allocation=str(path), risk="")
    message = str(err.value)
    assert str(path) in message and where in message and rule in message, message
    assert (list(Portfolio.objects.values()), ConfigChange.objects.count()) == before
