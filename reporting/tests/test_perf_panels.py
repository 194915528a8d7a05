"""The performance and overview panels of issue 14: stored flows, drawdown shading,
Brinson against an equal-weight universe, the portfolio Sharpe figure and the exposure by
asset class, each read from the rendered page and compared with the engine computed
independently."""

from __future__ import annotations

import json
import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import (
    Instrument,
    PortfolioSnapshot,
    Position,
    PriceBar,
    RebalanceEvent,
    Strategy,
    StrategySnapshot,
)
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


def _figure(html: str, name: str) -> dict:
    match = re.search(rf'<script type="application/json" id="fig-{name}">(.*?)</script>', html)
    assert match, f"no figure {name}"
    return json.loads(match.group(1))


def _pct(text: str) -> float:
    return float(text.replace("%", "").replace(",", "")) / 100


def _portfolio_returns(portfolio) -> pd.Series:
    rows = PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date")
    frame = pd.DataFrame(list(rows.values_list("date", "daily_return")), columns=["d", "r"])
    # the first snapshot is the funding day: no return
    return pd.Series(frame["r"].to_numpy()[1:], index=pd.DatetimeIndex(frame["d"])[1:])


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


# --- the rendered pages against the engine ----------------------------------------------


def _drawdown_rows_by_hand(r: pd.Series, top: int) -> list[tuple[str, str, float]]:
    """(shaded from, shaded to, depth) of the ``top`` deepest runs under water, from the
    wealth index: a run is a maximal stretch with wealth below its running peak."""
    wealth = np.concatenate(([1.0], np.cumprod(1 + r.to_numpy())))
    dd = wealth / np.maximum.accumulate(wealth) - 1
    dates = [None, *r.index.strftime("%Y-%m-%d")]
    runs, i = [], 1
    while i < len(dd):
        if dd[i] < 0:
            j = i
            while j + 1 < len(dd) and dd[j + 1] < 0:
                j += 1
            peak = dates[i - 1] or dates[i]
            recovered = dates[j + 1] if j + 1 < len(dd) else dates[-1]
            runs.append((peak, recovered, float(dd[i : j + 1].min())))
            i = j + 1
        else:
            i += 1
    return sorted(runs, key=lambda run: run[2])[:top]


def test_the_performance_page_shades_the_drawdown_tables_periods_on_a_log_chart(logged_in):
    portfolio = _demo(date(1991, 6, 28))
    html = logged_in.get("/performance/").content.decode()
    fig = _figure(html, "cumulative")
    assert fig["layout"]["yaxis"]["type"] == "log"
    assert [b["label"] for b in fig["layout"]["updatemenus"][0]["buttons"]] == ["Log", "Linear"]
    rects = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
    expected = _drawdown_rows_by_hand(_portfolio_returns(portfolio), 10)
    assert len(expected) == 10
    assert [(s["x0"], s["x1"]) for s in rects] == [(a, b) for a, b, _ in expected]
    assert [s["name"] for s in rects] == [f"drawdown {k}" for k in range(1, 11)]
    # the same periods, in the same order, as the table under the chart
    table = re.search(r'<table id="drawdown-periods">(.*?)</table>', html, re.S).group(1)
    depths = [_pct(d) for d in re.findall(r'<td class="down">([^<]+)</td>', table)]
    np.testing.assert_allclose(depths, [d for _, _, d in expected], atol=5e-5)
    # the growth of 1 ends at the compounded return
    growth = fig["data"][0]
    assert growth["name"] == "Portfolio"
    np.testing.assert_allclose(
        growth["y"][-1], np.prod(1 + _portfolio_returns(portfolio).to_numpy()), rtol=1e-3
    )


def _equal_weight_universe_return(portfolio) -> float:
    """prod(1 + R_b) - 1 by hand: R_b,t = sum over sectors of (n_s / N) x the mean
    return of the sector's tickers that day, on the portfolio's dates."""
    dates = pd.DatetimeIndex(
        PortfolioSnapshot.objects.filter(portfolio=portfolio)
        .order_by("date")
        .values_list("date", flat=True)
    )
    sectors = dict(Instrument.objects.filter(is_benchmark=False).values_list("ticker", "sector"))
    bars = PriceBar.objects.filter(instrument__ticker__in=list(sectors), date__lte=dates[-1])
    long = pd.DataFrame(
        list(bars.values_list("date", "instrument__ticker", "close")), columns=["d", "t", "c"]
    )
    long["c"] = long["c"].astype(float)
    wide = long.pivot(index="d", columns="t", values="c")
    wide.index = pd.DatetimeIndex(wide.index)
    closes = wide.reindex(wide.index.union(dates)).ffill().reindex(dates)
    daily = closes.pct_change(fill_method=None).iloc[1:]
    total = 1.0
    n = len(sectors)
    for _, row in daily.iterrows():
        day = 0.0
        for sector in set(sectors.values()):
            members = [t for t, s in sectors.items() if s == sector]
            values = row[members].dropna()
            share = len(members) / n
            day += share * (values.mean() if len(values) else 0.0)
        total *= 1 + day
    return total - 1


def test_the_brinson_table_adds_up_to_the_active_return_against_the_equal_weight_universe(
    logged_in,
):
    portfolio = _demo(date(1990, 12, 31))
    html = logged_in.get("/performance/?section=attribution").content.decode()
    table = re.search(r'<table id="brinson">(.*?)</table>', html, re.S).group(1)
    caption = re.sub(r"<[^>]+>", "", re.search(r"<caption>(.*?)</caption>", table, re.S).group(1))
    numbers = re.findall(r"(-?[\d,.]+)%", caption)
    portfolio_r, bench_r, active = (_pct(x) for x in numbers[:3])
    hand_portfolio = float(np.prod(1 + _portfolio_returns(portfolio).to_numpy()) - 1)
    np.testing.assert_allclose(portfolio_r, hand_portfolio, atol=5e-5)
    np.testing.assert_allclose(bench_r, _equal_weight_universe_return(portfolio), atol=5e-5)
    np.testing.assert_allclose(active, portfolio_r - bench_r, atol=1e-4)
    effects = {
        name: [float(v) for v in re.findall(r'data-value="([^"]+)"', row)]
        for name, row in re.findall(r'<tr data-segment="([^"]+)">(.*?)</tr>', table, re.S)
    }
    assert "Cash and costs" in effects and len(effects) >= 5
    # per row: allocation + selection + interaction = total effect; rows sum to active
    for allocation, selection, interaction, total in effects.values():
        np.testing.assert_allclose(allocation + selection + interaction, total, atol=1e-12)
    np.testing.assert_allclose(
        sum(v[3] for v in effects.values()),
        hand_portfolio - _equal_weight_universe_return(portfolio),
        atol=1e-9,
    )
    # selection is not zero by construction any more
    assert any(abs(v[1]) > 1e-4 for name, v in effects.items() if name != "Cash and costs")
    assert "equal-weight universe" in html


def test_the_correlation_chart_is_the_average_pair_inside_its_band(logged_in):
    portfolio = _demo(date(1990, 12, 31))
    html = logged_in.get("/performance/?section=rolling&window=30").content.decode()
    fig = _figure(html, "rolling-corr")
    names = [t["name"] for t in fig["data"]]
    # 5 strategies, 10 pairs: the band only, no line per pair
    assert names == ["highest pair", "lowest to highest pair", "average of pairs"]
    rows = StrategySnapshot.objects.filter(strategy__portfolio=portfolio).values_list(
        "strategy__name", "date", "daily_return"
    )
    frame = pd.DataFrame(list(rows), columns=["s", "d", "r"])
    frame = frame[frame["d"] > frame.groupby("s")["d"].transform("min")]
    wide = frame.pivot(index="d", columns="s", values="r")
    wide.index = pd.DatetimeIndex(wide.index)
    last = wide.iloc[-30:]
    corr = last.corr().to_numpy()
    pairs = corr[np.triu_indices(len(corr), 1)]
    assert fig["data"][2]["x"][-1] == wide.index[-1].strftime("%Y-%m-%d")
    np.testing.assert_allclose(fig["data"][2]["y"][-1], pairs.mean(), atol=1e-3)
    np.testing.assert_allclose(fig["data"][0]["y"][-1], pairs.max(), atol=1e-3)
    np.testing.assert_allclose(fig["data"][1]["y"][-1], pairs.min(), atol=1e-3)
    # the cached page follows the next commit
    run_update(as_of=date(1991, 1, 31), load_prices=False)
    html = logged_in.get("/performance/?section=rolling&window=30").content.decode()
    assert "As of the close of 1991-01-31" in html


def test_the_overview_shows_sharpe_asset_classes_and_why_a_paused_book_drifts(logged_in):
    portfolio = _demo(date(1991, 6, 28))
    html = logged_in.get("/").content.decode()
    r = _portfolio_returns(portfolio).to_numpy()
    assert len(r) > 252

    def sharpe(x):
        return x.mean() / x.std(ddof=1) * math.sqrt(252)

    full = re.search(r'id="sharpe-full">([^<]+)<', html).group(1)
    year = re.search(r'id="sharpe-1y"[^>]*>1y: ([^<]+)<', html).group(1)
    assert float(full) == pytest.approx(sharpe(r), abs=0.005)
    assert float(year) == pytest.approx(sharpe(r[-252:]), abs=0.005)
    assert "rf 0%" in html
    # exposure by asset class: |net value| per ticker across books, summed by class
    as_of = PortfolioSnapshot.objects.filter(portfolio=portfolio).latest("date").date
    net: dict[str, float] = {}
    classes = {}
    for p in Position.objects.filter(strategy__portfolio=portfolio).select_related("instrument"):
        close = float(
            PriceBar.objects.filter(instrument=p.instrument, date__lte=as_of).latest("date").close
        )
        t = p.instrument.ticker
        net[t] = net.get(t, 0.0) + p.quantity * close * float(p.instrument.multiplier)
        classes[t] = p.instrument.asset_class
    by_class: dict[str, float] = {}
    for t, v in net.items():
        by_class[classes[t]] = by_class.get(classes[t], 0.0) + abs(v)
    pie = _figure(html, "asset-classes")["data"][0]
    assert dict(zip(pie["labels"], pie["values"], strict=True)) == pytest.approx(by_class)
    sectors = _figure(html, "sectors")["data"][0]
    assert sum(sectors["values"]) == pytest.approx(sum(pie["values"]))
    # a paused book: its actual weight beside the target, and what happens to its capital
    Strategy.objects.filter(portfolio=portfolio, name="mean_reversion_20").update(
        status=Strategy.Status.PAUSED
    )
    html = logged_in.get("/").content.decode()
    row = re.search(r'<tr data-strategy="mean_reversion_20">(.*?)</tr>', html, re.S).group(1)
    weight = StrategySnapshot.objects.get(strategy__name="mean_reversion_20", date=as_of).weight
    assert re.search(r'class="actual-weight">([^<]+)<', row).group(1) == f"{weight * 100:.2f}%"
    assert "keeps its capital and its positions" in row
    perf = logged_in.get("/performance/?section=attribution").content.decode()  # key: status
    row = re.search(r'<tr data-strategy="mean_reversion_20">(.*?)</tr>', perf, re.S).group(1)
    assert "keeps its capital and its positions" in row
