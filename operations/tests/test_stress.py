"""Stress tests of a live portfolio's books (issue 13): hold mode against an independent
quantity x price-change computation from the stored closes, the limits that fire, run mode
through the update path's own engine, instant shocks, the command, and bad input. Nothing
but the ScenarioRun row is ever written."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from operations.config import portfolio_configure
from operations.tests.scenario_setup import momentum, stressed_portfolio
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.models import Instrument, Position, PriceBar, StrategySnapshot, Trade
from risk.engine.stress import Shock, WindowPath, path_worst_drawdown, window_relatives
from risk.models import ScenarioRun, Violation
from risk.services.scenarios import (
    ScenarioError,
    shock_compute,
    stress_compute,
    stress_record,
)

COVID = (date(2020, 2, 19), date(2020, 3, 23))


@pytest.fixture
def live(db, settings):
    settings.QUANTSITE_ALERT_MAX_AGE_DAYS = 100_000
    return stressed_portfolio()


def _stored(ticker: str, start: date, end: date, before: date) -> tuple[pd.Series, float]:
    """The stored closes of ``ticker`` in the window and its last close through ``before``
    (straight from PriceBar rows, not through the services)."""
    rows = PriceBar.objects.filter(instrument__ticker=ticker)
    window = pd.Series(
        {r.date: float(r.close) for r in rows.filter(date__gte=start, date__lte=end)}
    ).sort_index()
    today = float(rows.filter(date__lte=before).order_by("-date").first().close)
    return window, today


def _table_counts(p) -> tuple:
    return (
        Trade.objects.filter(strategy__portfolio=p).count(),
        StrategySnapshot.objects.filter(strategy__portfolio=p).count(),
        Violation.objects.filter(portfolio=p).count(),
        sorted(Position.objects.filter(strategy__portfolio=p).values_list("quantity", flat=True)),
    )


def test_hold_pnl_is_quantity_times_price_change_from_the_stored_closes(live):
    result = stress_compute(portfolio=live, start=COVID[0], end=COVID[1], mode="hold")
    expected: dict[str, dict[str, float]] = {}
    for pos in Position.objects.filter(strategy__portfolio=live).select_related(
        "strategy", "instrument"
    ):
        window, today = _stored(pos.instrument.ticker, *COVID, live.last_applied_date)
        base = window.iloc[0]
        for d, close in window.items():
            # the scenario price is today's close moved as the ticker moved since the base
            change = today * close / base - today
            book = expected.setdefault(pos.strategy.name, {})
            book[d.isoformat()] = book.get(d.isoformat(), 0.0) + pos.quantity * change
    assert result["window"]["base"] == "2020-02-19" and result["window"]["last"] == "2020-03-23"
    assert set(result["strategies"]) == {"fast", "slow"}
    for name, series in expected.items():
        got = result["strategies"][name]["pnl"]
        assert list(got) == list(series)
        np.testing.assert_allclose(list(got.values()), list(series.values()), rtol=1e-9, atol=1e-9)
    total = {d: sum(s.get(d, 0.0) for s in expected.values()) for d in result["portfolio"]["pnl"]}
    np.testing.assert_allclose(
        list(result["portfolio"]["pnl"].values()), list(total.values()), rtol=1e-9, atol=1e-9
    )
    assert result["portfolio"]["pnl"]["2020-02-19"] == 0.0
    equity0 = result["portfolio"]["equity0"]
    path = equity0 + np.array(list(total.values()))
    worst = min(0.0, (path / np.maximum.accumulate(np.maximum(path, equity0)) - 1).min())
    assert math.isclose(result["portfolio"]["worst_drawdown"], worst, rel_tol=1e-9)
    assert result["portfolio"]["worst_drawdown"] < -0.15  # long equities through March 2020
    for name, series in expected.items():
        pos = Position.objects.filter(strategy__portfolio=live, strategy__name=name)
        strategy = pos.first().strategy
        e0 = strategy.cash + sum(
            p.quantity * _stored(p.instrument.ticker, *COVID, live.last_applied_date)[1]
            for p in pos.select_related("instrument")
        )
        book = e0 + np.array(list(series.values()))
        dd = min(0.0, (book / np.maximum.accumulate(np.maximum(book, e0)) - 1).min())
        assert math.isclose(result["strategies"][name]["worst_drawdown"], dd, rel_tol=1e-9)


def test_hold_reports_the_limits_that_fire_and_not_the_others(live):
    result = stress_compute(portfolio=live, start=COVID[0], end=COVID[1], mode="hold")
    fired = {f["name"]: f for f in result["limits_fired"]}
    dd = fired["max_drawdown"]
    assert dd["scope"] == "portfolio" and dd["action"] == "liquidate_all"
    assert dd["first_value"] < -0.10 and dd["worst_value"] <= dd["first_value"]
    # the first bar the hold path's equity is 10 % under the stored risk peak
    assert date(2020, 2, 19) < date.fromisoformat(dd["first_date"]) <= date(2020, 3, 23)
    assert "strategy_max_drawdown" not in fired  # -90 % is never reached


def test_hold_and_run_change_nothing_but_the_stored_scenario(live):
    before = _table_counts(live)
    hold = stress_record(
        portfolio=live, name="covid", start=COVID[0], end=COVID[1], mode="hold", trigger="command"
    )
    run = stress_record(
        portfolio=live, name="covid", start=COVID[0], end=COVID[1], mode="run", trigger="command"
    )
    assert _table_counts(live) == before
    assert ScenarioRun.objects.filter(portfolio=live).count() == 2
    assert hold.status == run.status == ScenarioRun.Status.SUCCESS
    assert hold.as_of == live.last_applied_date


def test_a_scenario_is_a_function_of_the_stored_state(live):
    for mode in ("hold", "run"):
        a = stress_compute(portfolio=live, start=COVID[0], end=COVID[1], mode=mode)
        b = stress_compute(portfolio=live, start=COVID[0], end=COVID[1], mode=mode)
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_run_mode_trades_through_the_window_with_the_risk_manager_on(live):
    hold = stress_compute(portfolio=live, start=COVID[0], end=COVID[1], mode="hold")
    run = stress_compute(portfolio=live, start=COVID[0], end=COVID[1], mode="run")
    assert list(run["portfolio"]["pnl"]) == list(hold["portfolio"]["pnl"])
    # no cost is configured and a fill happens at the close it is marked at, so the first
    # bar's P&L is that of the positions held overnight: the hold P&L of that bar
    first = list(hold["portfolio"]["pnl"])[1]
    assert math.isclose(
        run["portfolio"]["pnl"][first], hold["portfolio"]["pnl"][first], rel_tol=1e-9
    )
    # the -10 % drawdown limit liquidates: the run ends flatter than holding
    names = [f["name"] for f in run["limits_fired"]]
    assert "max_drawdown" in names
    assert run["portfolio"]["final_pnl"] > hold["portfolio"]["final_pnl"]
    assert run["portfolio"]["trades"] > 0
    pnl_sum = sum(s["final_pnl"] for s in run["strategies"].values())
    assert math.isclose(pnl_sum, run["portfolio"]["final_pnl"], rel_tol=1e-9, abs_tol=1e-6)


def test_a_shock_moves_each_ticker_by_its_most_specific_rule(live):
    shock = Shock(market=-0.05, sectors={"Information Technology": -0.20}, tickers={"XOM": 0.1})
    result = shock_compute(portfolio=live, shock=shock)
    sector = dict(Instrument.objects.values_list("ticker", "sector"))
    expected = {}
    for pos in Position.objects.filter(strategy__portfolio=live).select_related(
        "strategy", "instrument"
    ):
        t = pos.instrument.ticker
        _, today = _stored(t, *COVID, live.last_applied_date)
        move = 0.1 if t == "XOM" else -0.20 if sector[t] == "Information Technology" else -0.05
        assert result["moves"][t] == pytest.approx(move, abs=1e-15)
        expected[pos.strategy.name] = (
            expected.get(pos.strategy.name, 0.0) + pos.quantity * today * move
        )
    for name, pnl in expected.items():
        assert math.isclose(result["strategies"][name]["pnl"], pnl, rel_tol=1e-9)
    assert math.isclose(result["portfolio"]["pnl"], sum(expected.values()), rel_tol=1e-9)


def test_the_command_writes_the_issue_json_keys(live, tmp_path, capsys):
    out = tmp_path / "covid.json"
    call_command(
        "stress",
        "--window",
        "2020-02-19:2020-03-23",
        "--mode",
        "hold",
        "--portfolio",
        "stressed",
        "--json",
        str(out),
    )
    data = json.loads(out.read_text())
    assert set(data["portfolio"]["pnl"]) >= {"2020-02-19", "2020-03-23"}
    assert isinstance(data["portfolio"]["worst_drawdown"], float)
    assert set(data["strategies"]) == {"fast", "slow"} and "pnl" in data["strategies"]["fast"]
    assert "max_drawdown" in [f["name"] for f in data["limits_fired"]]
    assert "COVID crash [hold]" in capsys.readouterr().out  # the seeded window's name


@pytest.mark.parametrize(
    "window, message",
    [
        ("2020-03-23:2020-02-19", "before the start"),
        ("2020-02-19", "START:END"),
        ("2020-02-30:2020-03-01", "ISO dates"),
        ("1980-01-01:1980-02-01", "no stored bar"),
    ],
)
def test_a_bad_window_gets_one_clear_message_and_stores_nothing_else(live, window, message):
    before = _table_counts(live)
    with pytest.raises(CommandError, match=message):
        call_command("stress", "--window", window, "--portfolio", "stressed")
    assert _table_counts(live) == before


def test_a_portfolio_without_bars_cannot_be_stressed(db):
    alloc = {
        "portfolio": {"name": "empty", "initial_capital": 1000},
        "strategies": [{"name": "a", "allocation": 1.0, **momentum(20, 1)}],
    }
    p = portfolio_configure(spec=parse_allocation_config(alloc, source="a.yaml"), source="t")
    with pytest.raises(ScenarioError, match="no applied bar"):
        stress_compute(portfolio=p, start=COVID[0], end=COVID[1])


def test_window_relatives_hold_an_uncovered_ticker_flat_and_carry_gaps_forward():
    closes = pd.DataFrame(
        {"A": [10.0, 11.0, np.nan, 12.1], "B": [np.nan, np.nan, 5.0, 6.0]},
        index=pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-06"]),
    )
    path = window_relatives(closes=closes, start=date(2020, 1, 2), end=date(2020, 1, 6))
    # base 2020-01-02: A 11 -> (gap, kept) 11 -> 12.1 = 1.0, 1.0, 1.1; B has no base close
    np.testing.assert_allclose(path.relatives["A"], [1.0, 1.0, 1.1])
    np.testing.assert_allclose(path.relatives["B"], [1.0, 1.0, 1.0])
    assert path.uncovered == ["B"]
    assert isinstance(path, WindowPath) and path.dates[0] == date(2020, 1, 2)


def test_worst_drawdown_measures_from_todays_equity_and_later_peaks():
    # 100 -> 90 (-10 %) -> 120 -> 96 (-20 % from 120)
    assert math.isclose(path_worst_drawdown(np.array([100, 90, 120, 96.0]), 100.0), -0.2)
    assert path_worst_drawdown(np.array([100, 101, 102.0]), 100.0) == 0.0
