"""The paper-trading book: fills, costs, P&L, sizing. Numbers worked out in comments."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from portfolio.engine.book import Book, Execution, Holding

D0, D1, D2 = date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)
FREE = Execution()


def test_a_buy_pays_slippage_in_the_price_and_commission_on_top():
    book = Book(cash=10_000.0)
    f = book.trade("A", 10, 100.0, D0, Execution(commission_bps=10, slippage_bps=20), "signal")
    # price 100 * 1.002 = 100.2; value 1002; commission 1.002; slippage money 10*100*.002 = 2
    assert_allclose([f.price, f.value, f.commission, f.cost], [100.2, 1002.0, 1.002, 3.002])
    assert_allclose(book.cash, 10_000 - 1002 - 1.002)
    # equity at the close lost exactly the cost
    assert_allclose(book.equity({"A": 100.0}), 10_000 - 3.002)
    assert f.side == "buy" and f.realized_pnl == 0


def test_a_partial_sell_realizes_pnl_against_the_average_entry():
    book = Book(cash=1000.0)
    book.trade("A", 10, 100.0, D0, FREE, "signal")
    f = book.trade("A", -4, 110.0, D1, FREE, "signal")
    assert f.realized_pnl == pytest.approx(40.0)  # (110 - 100) * 4
    assert book.holdings["A"].quantity == 6 and book.holdings["A"].avg_price == 100.0
    assert book.holdings["A"].entry_date == D0


def test_adding_to_a_position_averages_the_entry_price():
    book = Book(cash=5000.0)
    book.trade("A", 10, 100.0, D0, FREE, "signal")
    book.trade("A", 10, 110.0, D1, FREE, "signal")
    assert book.holdings["A"].avg_price == pytest.approx(105.0)  # (1000 + 1100) / 20


def test_a_sell_through_zero_closes_then_opens_a_short_at_the_fill_price():
    book = Book(cash=1000.0)
    book.trade("A", 6, 100.0, D0, FREE, "signal")
    f = book.trade("A", -10, 90.0, D1, FREE, "signal")
    assert f.realized_pnl == pytest.approx(-60.0)  # (90 - 100) * 6
    h = book.holdings["A"]
    assert (h.quantity, h.avg_price, h.entry_date) == (-4, 90.0, D1)


def test_a_short_keeps_its_proceeds_in_cash_and_profits_when_price_falls():
    book = Book(cash=1000.0)
    book.trade("A", -5, 50.0, D0, FREE, "signal")
    assert book.cash == 1250.0
    assert book.equity({"A": 40.0}) == pytest.approx(1050.0)  # 1250 - 5 * 40
    f = book.trade("A", 5, 40.0, D1, FREE, "signal")
    assert f.realized_pnl == pytest.approx(50.0)  # (40 - 50) * 5 * -1
    assert "A" not in book.holdings and book.cash == pytest.approx(1050.0)


def test_the_contract_multiplier_scales_value_and_pnl():
    book = Book(cash=1_000_000.0, multipliers={"ES": 50.0})
    f = book.trade("ES", 1, 4000.0, D0, FREE, "signal")
    assert f.value == 200_000.0
    assert book.equity({"ES": 4010.0}) == pytest.approx(1_000_000 + 500)  # 10 points * 50


def test_rebalance_to_sizes_target_weights_of_equity_at_the_close():
    book = Book(cash=1000.0)
    fills = book.rebalance_to({"A": 0.5, "B": 0.5}, {"A": 10.0, "B": 20.0}, D0, FREE, "signal")
    assert {f.ticker: f.quantity for f in fills} == {"A": 50.0, "B": 25.0}
    assert book.cash == pytest.approx(0.0)


def test_whole_shares_truncate_toward_zero():
    book = Book(cash=1000.0)
    fills = book.rebalance_to(
        {"A": 0.5, "B": -0.5}, {"A": 30.0, "B": 30.0}, D0, Execution(whole_shares=True), "signal"
    )
    assert {f.ticker: f.quantity for f in fills} == {"A": 16.0, "B": -16.0}  # 500/30 = 16.67


def test_sells_fill_before_buys():
    book = Book(cash=0.0, holdings={"A": Holding(10, 10.0, D0)})
    fills = book.rebalance_to({"B": 1.0}, {"A": 10.0, "B": 5.0}, D1, FREE, "signal")
    assert [f.ticker for f in fills] == ["A", "B"]


def test_a_ticker_without_a_bar_today_is_neither_bought_nor_sold():
    book = Book(cash=500.0, holdings={"A": Holding(10, 10.0, D0)})
    fills = book.rebalance_to(
        {"B": 1.0}, {"A": float("nan"), "B": 5.0}, D1, FREE, "signal", equity=600.0
    )
    assert [f.ticker for f in fills] == ["B"] and book.holdings["A"].quantity == 10


def test_the_trade_band_skips_small_resizes_but_never_an_exit():
    ex = Execution(trade_band=0.02)
    book = Book(cash=500.0, holdings={"A": Holding(50, 10.0, D0)})  # A is 50% of 1000
    assert book.rebalance_to({"A": 0.51}, {"A": 10.0}, D1, ex, "signal") == []  # 1% drift
    assert len(book.rebalance_to({"A": 0.60}, {"A": 10.0}, D1, ex, "signal")) == 1
    assert [f.quantity for f in book.rebalance_to({}, {"A": 10.0}, D2, ex, "signal")] == [-60.0]


def test_the_trade_band_never_holds_gross_exposure_above_the_targets():
    # Equity 1000: A and B each 50% (gross 1.0). Targets A 49%, B 49%, C 2%: gross 1.0.
    # Each trim is 1% (inside the 2% band), but skipping both and opening C would leave
    # gross at 1.02, above the targets' 1.0: so trims are made, largest first (a tie: by
    # ticker), until gross is back at 1.0 -- here both (-1 share each).
    ex = Execution(trade_band=0.02)
    book = Book(cash=0.0, holdings={"A": Holding(50, 10.0, D0), "B": Holding(50, 10.0, D0)})
    closes = {"A": 10.0, "B": 10.0, "C": 10.0}
    fills = book.rebalance_to({"A": 0.49, "B": 0.49, "C": 0.02}, closes, D1, ex, "signal")
    assert [(f.ticker, round(f.quantity, 9)) for f in fills] == [
        ("A", -1.0),
        ("B", -1.0),
        ("C", 2.0),
    ]
    long_mv, short_mv = book.exposures(closes)
    assert_allclose((long_mv + short_mv) / book.equity(closes), 1.0, rtol=1e-12)
    # Only as many trims as needed. Equity 1000: A 40%, B 40%, D 10%, cash 10%. Targets
    # A 39%, B 39.5%, D 11%, C 10% (gross 99.5%). Skipping every banded re-size leaves
    # 40+40+10+10 = 100%; the largest trim (A, 1%) brings it to 99% <= 99.5%: B's 0.5%
    # trim is not needed, and D's banded add is skipped as usual.
    book = Book(
        cash=100.0,
        holdings={
            "A": Holding(40, 10.0, D0),
            "B": Holding(40, 10.0, D0),
            "D": Holding(10, 10.0, D0),
        },
    )
    closes4 = {**closes, "D": 10.0}
    targets = {"A": 0.39, "B": 0.395, "D": 0.11, "C": 0.10}
    fills = book.rebalance_to(targets, closes4, D1, ex, "signal")
    assert [(f.ticker, round(f.quantity, 9)) for f in fills] == [("A", -1.0), ("C", 10.0)]
    # Under-weight positions inside the band are still left alone: no gross overshoot.
    book = Book(cash=20.0, holdings={"A": Holding(49, 10.0, D0), "B": Holding(49, 10.0, D0)})
    assert book.rebalance_to({"A": 0.5, "B": 0.5}, closes, D1, ex, "signal") == []


def test_raise_cash_sells_every_position_by_the_same_fraction():
    book = Book(cash=0.0, holdings={"A": Holding(50, 10.0, D0), "B": Holding(25, 20.0, D0)})
    fills = book.raise_cash(100.0, {"A": 10.0, "B": 20.0}, D1, FREE, "rebalance")
    # 1000 of positions, 100 needed: sell 10% of each
    assert {f.ticker: f.quantity for f in fills} == pytest.approx({"A": -5.0, "B": -2.5})
    assert book.cash == pytest.approx(100.0)


def test_raise_cash_nets_its_own_costs():
    ex = Execution(commission_bps=10, slippage_bps=10)
    book = Book(cash=0.0, holdings={"A": Holding(100, 10.0, D0)})
    book.raise_cash(100.0, {"A": 10.0}, D1, ex, "rebalance")
    assert book.cash == pytest.approx(100.0)


@settings(max_examples=60, deadline=None)
@given(
    cash=st.floats(0, 1e6),
    qty=st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=5),
    px=st.lists(st.floats(0.5, 500), min_size=5, max_size=5),
    weights=st.lists(st.floats(-1, 1), min_size=5, max_size=5),
    bps=st.floats(0, 50),
)
def test_trading_changes_equity_by_exactly_the_costs(cash, qty, px, weights, bps):
    tickers = ["A", "B", "C", "D", "E"]
    book = Book(
        cash=cash, holdings={t: Holding(q, 1.0, D0) for t, q in zip(tickers, qty) if abs(q) > 1e-6}
    )
    closes = dict(zip(tickers, px))
    before = book.equity(closes)
    fills = book.rebalance_to(
        dict(zip(tickers, weights)),
        closes,
        D1,
        Execution(commission_bps=bps, slippage_bps=bps),
        "signal",
    )
    assert_allclose(book.equity(closes), before - sum(f.cost for f in fills), rtol=1e-9, atol=1e-6)
