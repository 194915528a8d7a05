"""The strategy page's selector, signal overlay and position sizing rationale (issue 14):
numbers read from the rendered page, compared with the engine's own signal and sizing
and with the same quantities computed independently here."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from django.core.cache import cache
from django.db.models import F

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio import selectors as portfolio_selectors
from portfolio.engine.signals import signal_from_config
from portfolio.models import Position, PriceBar, Strategy, Trade
from portfolio.services.config import allocation_spec_read
from reporting.pages import strategy_panels
from reporting.selectors import price_bar_stamp

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEMO = CONFIG / "strategy_allocation.yaml"
AS_OF = date(1991, 6, 28)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the page caches the closes on the bars' stamp
    yield
    cache.clear()


def _demo(as_of: date = AS_OF, spec=None):
    portfolio = portfolio_configure(spec=spec or allocation_spec_read(DEMO), source="demo")
    run_update(as_of=as_of, load_prices=False)
    portfolio.refresh_from_db()
    return portfolio


def _figure(html: str, name: str) -> dict:
    match = re.search(
        rf'<script type="application/json" id="fig-{name}">(.*?)</script>', html, re.S
    )
    assert match, f"no figure {name}"
    return json.loads(match.group(1))


def _trace(fig: dict, meta: str) -> pd.Series:
    trace = next(t for t in fig["data"] if t.get("meta") == meta)
    y = np.array([np.nan if v is None else v for v in trace["y"]], dtype=float)
    return pd.Series(y, index=pd.to_datetime(trace["x"]))


def _universe(as_of: date) -> pd.DataFrame:
    """The update path's closes, read here with its own reader (portfolio.selectors)."""
    closes = portfolio_selectors.price_frame(end=as_of)
    return closes[[t for t in portfolio_selectors.tradable_tickers() if t in closes.columns]]


# --- the selector ------------------------------------------------------------------------


def test_a_handful_of_strategies_get_tabs_with_the_current_one_marked(logged_in):
    _demo(date(1990, 3, 30))
    html = logged_in.get("/strategy/mean_reversion_20/").content.decode()
    nav = re.search(r'<nav class="tabs" id="strategy-selector".*?</nav>', html, re.S).group(0)
    assert nav.count("<a ") == 5 and "<select" not in nav
    current = re.findall(r'<a href="/strategy/([^/]+)/" class="current"', nav)
    assert current == ["mean_reversion_20"]


def test_many_strategies_get_a_dropdown_that_marks_paused_books_and_works_without_js(
    logged_in,
):
    portfolio = _demo(date(1990, 3, 30))
    model = Strategy.objects.get(name="momentum_60")
    for i in range(3):
        Strategy.objects.create(
            portfolio=portfolio,
            name=f"extra_{i}",
            signal_type=model.signal_type,
            parameters=model.parameters,
            target_allocation=Decimal("0"),
            status="paused" if i == 1 else "active",
            position_order=10 + i,
        )
    html = logged_in.get("/strategy/extra_2/").content.decode()
    form = re.search(r'<form[^>]*id="strategy-selector".*?</form>', html, re.S).group(0)
    assert 'action="/strategy/"' in form and 'method="get"' in form and "<button" in form
    options = re.findall(r'<option value="([^"]+)"( selected)?>([^<]*)</option>', form)
    assert len(options) == 8
    assert [name for name, selected, _ in options if selected] == ["extra_2"]
    labels = {name: label for name, _, label in options}
    assert labels["extra_1"] == "extra_1 (paused)" and labels["extra_0"] == "extra_0"
    response = logged_in.get("/strategy/", {"strategy": "extra_1"})
    assert response.status_code == 302 and response["Location"] == "/strategy/extra_1/"
    assert logged_in.get("/strategy/", {"strategy": "nope"}).status_code == 404


# --- the signal overlay ------------------------------------------------------------------


def _compare(drawn: pd.Series, expected: pd.Series) -> None:
    """Every drawn point (8 significant digits on the page) equals the expected series."""
    assert len(drawn) > 100
    want = expected.reindex(drawn.index)
    assert (drawn.isna() == want.isna()).all()
    # the page rounds to 8 significant digits of the series' largest magnitude
    atol = 1e-7 * np.nanmax(np.abs(want.to_numpy()))
    np.testing.assert_allclose(drawn.dropna(), want.dropna(), rtol=0, atol=atol)


def test_the_momentum_overlay_draws_trailing_return_rank_and_the_top_n_cut(logged_in):
    _demo()
    html = logged_in.get("/strategy/momentum_60/", {"ticker": "AAPL"}).content.decode()
    fig = _figure(html, "signal")
    closes = _universe(AS_OF)
    # Independently: score = close_t / close_{t-60} - 1; eligible when close > SMA 200;
    # rank 1 = the highest eligible score (ties to the earlier ticker).
    score = closes / closes.shift(60) - 1
    sma = closes.rolling(200, min_periods=200).mean()
    eligible = score.notna() & (closes > sma)
    key = score.where(eligible, -np.inf)
    rank = key.rank(axis=1, ascending=False, method="first").where(eligible)
    _compare(_trace(fig, "close"), closes["AAPL"])
    _compare(_trace(fig, "score"), score["AAPL"])
    _compare(_trace(fig, "sma"), sma["AAPL"])
    _compare(_trace(fig, "rank"), rank["AAPL"])
    # the engine agrees with itself: the page's series are Signal.indicators'
    engine = signal_from_config("MomentumSignalV2", {"lookback": 60, "sma_filter": 200})
    _compare(_trace(fig, "rank"), engine.indicators(closes)["rank"]["AAPL"])
    top_n = max(2, closes.shape[1] // 4)
    assert [s["y0"] for s in fig["layout"]["shapes"]] == [top_n]
    assert fig["layout"]["shapes"][0]["yref"] == "y3"  # on the rank panel
    assert fig["layout"]["yaxis3"]["autorange"] == "reversed"
    buys = Trade.objects.filter(
        strategy__name="momentum_60", instrument__ticker="AAPL", side="buy"
    ).values_list("date", flat=True)
    drawn = next(t for t in fig["data"] if t.get("meta") == "buys")["x"]
    assert drawn == sorted({d.isoformat() for d in buys})


def test_the_mean_reversion_overlay_draws_the_z_score_and_its_entry_exit_thresholds(
    logged_in,
):
    _demo()
    html = logged_in.get("/strategy/mean_reversion_20/", {"ticker": "KO"}).content.decode()
    fig = _figure(html, "signal")
    close = _universe(AS_OF)["KO"]
    roll = close.rolling(20, min_periods=20)
    z = (close - roll.mean()) / roll.std(ddof=1)
    _compare(_trace(fig, "z"), z)
    levels = sorted(s["y0"] for s in fig["layout"]["shapes"])
    assert levels == [-2.0, -0.5, 0.5, 2.0]
    assert {s["yref"] for s in fig["layout"]["shapes"]} == {"y2"}


def test_the_trend_overlay_draws_the_sma_over_the_price(logged_in):
    _demo()
    html = logged_in.get("/strategy/trend_following_50/", {"ticker": "JNJ"}).content.decode()
    fig = _figure(html, "signal")
    close = _universe(AS_OF)["JNJ"]
    _compare(_trace(fig, "sma"), close.rolling(50, min_periods=50).mean())
    sma = next(t for t in fig["data"] if t.get("meta") == "sma")
    assert sma["yaxis"] == "y" and sma["name"] == "SMA 50"


@pytest.mark.parametrize(
    "signal_type, parameters",
    [
        ("MomentumSignalV2", {"lookback": 60, "sma_filter": 200}),
        ("MeanReversionSignal", {"window": 20, "entry_z": 2.0, "exit_z": 0.5}),
        ("TrendFollowingSignal", {"window": 50}),
        ("TrendFollowingSignal", {"fast": 10, "slow": 40}),
    ],
)
def test_the_indicators_through_t_do_not_see_prices_after_t(signal_type, parameters):
    closes = _universe(date(1991, 12, 31))
    t = closes.index.get_loc(pd.Timestamp("1991-06-28"))
    perturbed = closes.copy()
    perturbed.iloc[t + 1 :] *= np.linspace(0.5, 2.0, len(closes) - t - 1)[:, None]
    signal = signal_from_config(signal_type, parameters)
    before, after = signal.indicators(closes), signal.indicators(perturbed)
    truncated = signal.indicators(closes.iloc[: t + 1])
    for name in before:
        pd.testing.assert_frame_equal(before[name].iloc[: t + 1], after[name].iloc[: t + 1])
        pd.testing.assert_frame_equal(before[name].iloc[: t + 1], truncated[name])
        assert not before[name].iloc[t + 1 :].equals(after[name].iloc[t + 1 :])


def test_the_page_overlay_ignores_bars_after_its_as_of_date(logged_in):
    _demo()
    url = "/strategy/mean_reversion_20/"
    first = _figure(logged_in.get(url, {"ticker": "KO"}).content.decode(), "signal")
    later = PriceBar.objects.filter(date__gt=AS_OF, date__lte=date(1991, 12, 31))
    assert later.exists()
    later.update(close=F("close") * Decimal("1.5"))
    cache.clear()
    again = _figure(logged_in.get(url, {"ticker": "KO"}).content.decode(), "signal")
    assert _trace(again, "z").equals(_trace(first, "z"))
    assert _trace(again, "close").index.max() == pd.Timestamp(AS_OF)


# --- the sizing rationale ----------------------------------------------------------------

SIZING_COLUMNS = (
    "raw",
    "vol_scale",
    "scaled",
    "capped",
    "leverage_scale",
    "sized",
    "exposure_scale",
    "risk_multiplier",
    "weight",
    "equity",
    "close",
    "quantity",
    "held",
)


def _sizing_rows(html: str) -> dict[str, dict[str, float]]:
    table = html.split('id="sizing-table"')[1].split("</table>")[0]
    rows = {}
    for ticker, body in re.findall(r'<tr data-ticker="([^"]+)">(.*?)</tr>', table, re.S):
        values = [float(v) for v in re.findall(r'data-value="([^"]*)"', body)]
        assert len(values) == len(SIZING_COLUMNS), (ticker, body)
        rows[ticker] = dict(zip(SIZING_COLUMNS, values, strict=True))
    return rows


def _spec(tmp_path, **risk):
    """The demo with trend_following_50 alone, under ``risk``."""
    config = yaml.safe_load(DEMO.read_text())
    trend = next(s for s in config["strategies"] if s["name"] == "trend_following_50")
    trend.update(allocation=1.0, risk_config=risk)
    trend.pop("trade_band", None)
    config["strategies"] = [trend]
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(config))
    return allocation_spec_read(path)


def _check_rationale(rows: dict, strategy: Strategy) -> None:
    positions = {p.instrument.ticker: p for p in Position.objects.filter(strategy=strategy)}
    assert rows and set(rows) == set(positions)
    for ticker, r in rows.items():
        # each step as sizing_stages documents it, from the numbers on the page
        np.testing.assert_allclose(r["scaled"], r["raw"] * r["vol_scale"], rtol=1e-12)
        np.testing.assert_allclose(r["sized"], r["capped"] * r["leverage_scale"], rtol=1e-12)
        mult = r["exposure_scale"] * r["risk_multiplier"]
        np.testing.assert_allclose(r["weight"], r["sized"] * mult, rtol=1e-12)
        # target weight x equity / price = the quantity the fill left, = the one held
        np.testing.assert_allclose(
            r["quantity"], r["weight"] * r["equity"] / r["close"], rtol=1e-12
        )
        np.testing.assert_allclose(r["held"], positions[ticker].quantity, rtol=1e-12)
        np.testing.assert_allclose(r["quantity"], r["held"], rtol=1e-9)


def test_the_sizing_rationale_rebuilds_each_quantity_where_the_position_cap_binds(
    logged_in, tmp_path
):
    # With about 20 tickers in trend a raw weight is about 1/20 (5%): a 3% cap binds.
    portfolio = _demo(spec=_spec(tmp_path, max_position_size=0.03, max_leverage=1.0))
    strategy = portfolio.strategies.get()
    rows = _sizing_rows(logged_in.get(f"/strategy/{strategy.name}/").content.decode())
    _check_rationale(rows, strategy)
    for r in rows.values():
        assert r["vol_scale"] == 1.0 and r["raw"] > 0.03
        np.testing.assert_allclose(r["capped"], 0.03, rtol=1e-12)
    html = logged_in.get(f"/strategy/{strategy.name}/").content.decode()
    assert html.split('id="sizing-table"')[1].count(">binds</span>") == len(rows)


def test_the_sizing_rationale_shows_the_volatility_scaling(logged_in, tmp_path):
    portfolio = _demo(spec=_spec(tmp_path, volatility_target=0.10, vol_lookback=60))
    strategy = portfolio.strategies.get()
    html = logged_in.get(f"/strategy/{strategy.name}/").content.decode()
    rows = _sizing_rows(html)
    _check_rationale(rows, strategy)
    closes = _universe(AS_OF)
    raw = signal_from_config("TrendFollowingSignal", {"window": 50}).targets(closes)
    returns = (closes / closes.shift(1) - 1).fillna(0.0)
    for ticker, r in rows.items():
        decided = pd.Timestamp(
            re.search(
                rf'data-ticker="{ticker}"><td>{ticker}</td>\s*<td class="date">([\d-]+)</td>', html
            ).group(1)
        )
        # independently: 10% / (sqrt(252) x std of the last 60 returns of the raw book)
        at = closes.index.get_loc(decided)
        book = returns.iloc[at - 59 : at + 1] @ raw.loc[decided]
        expected = 0.10 / (np.sqrt(252) * book.std(ddof=1))
        np.testing.assert_allclose(r["vol_scale"], expected, rtol=1e-9)
        np.testing.assert_allclose(r["raw"], raw.at[decided, ticker], rtol=1e-12)
        assert r["vol_scale"] != 1.0


def test_signal_fills_store_their_sizing_inputs_exactly():
    _demo(date(1990, 9, 28))
    fills = Trade.objects.filter(reason="signal").exclude(sizing=None)
    assert fills.count() == Trade.objects.filter(reason="signal").count() > 0
    assert not Trade.objects.exclude(reason="signal").exclude(sizing=None).exists()
    for f in fills[:200]:
        s = f.sizing
        assert set(s) == {
            "target",
            "exposure_scale",
            "portfolio_risk",
            "strategy_risk",
            "weight",
            "equity",
            "close",
        }
        assert all(isinstance(v, float) for v in s.values())
        # the close it was sized at is the stored bar's, bit for bit
        bar = PriceBar.objects.get(instrument=f.instrument, date=f.date)
        assert s["close"] == float(bar.close)
        slip = (f.price / s["close"] - 1) * (1 if f.side == "buy" else -1)
        assert 0 <= slip < 1e-2


def test_the_rationale_reads_the_same_closes_as_the_update_path():
    _demo(date(1990, 6, 29))
    mine = strategy_panels.universe_closes(as_of=date(1990, 6, 29))
    theirs = _universe(date(1990, 6, 29))
    pd.testing.assert_frame_equal(mine, theirs, check_names=False, check_freq=False)


def test_the_closes_cache_holds_one_frame_whatever_the_number_of_stamps(
    django_assert_num_queries,
):
    # One entry, replaced by the next stamp: a key per stamp kept a frame per bar in the
    # per-process cache (bench/memory.py: the worker grew 270 MiB over 200 updates).
    cache.clear()
    first, second = date(1990, 6, 29), date(1990, 7, 31)
    strategy_panels.universe_closes(as_of=first)
    strategy_panels.universe_closes(as_of=second)
    stamp, frame = cache.get(strategy_panels.CLOSES_CACHE_KEY)
    assert stamp == (second, *price_bar_stamp(end=second))
    assert frame.index[-1] <= pd.Timestamp(second)
    with django_assert_num_queries(1):  # the stamp alone: a hit
        strategy_panels.universe_closes(as_of=second)
    with django_assert_num_queries(3):  # the first stamp's frame is gone: read again
        strategy_panels.universe_closes(as_of=first)
