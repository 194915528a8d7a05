"""The invariants the state machine checks (``operations.tests.invariants``) hold on a real
book and catch a one-cent error in each kind of row they read: the negative control of
``test_invariants_machine``."""

from __future__ import annotations

import pytest

from operations.tests.invariants import Pause, book_violations
from operations.tests.test_invariants_machine import _bars, _configure, four_tickers  # noqa: F401
from portfolio.models import PortfolioSnapshot, Position, RebalanceEvent, StrategySnapshot, Trade


@pytest.fixture
def book(four_tickers):  # noqa: F811
    portfolio = _configure("periodic", "proportional", True)
    _bars(four_tickers[40], 7)
    assert book_violations(portfolio, []) == []
    return portfolio


def _one_problem(portfolio, pauses=()) -> list[str]:
    problems = book_violations(portfolio, list(pauses))
    assert problems
    return problems


def test_a_clean_book_of_forty_bars_has_every_kind_of_row_the_checks_read(book):
    trades = Trade.objects.filter(strategy__portfolio=book)
    assert {"signal", "rebalance"} <= set(trades.values_list("reason", flat=True))
    assert trades.filter(side="sell", strategy__name="reversion").exists()  # shorts too
    assert RebalanceEvent.objects.filter(portfolio=book, trigger="periodic").count() >= 5
    assert Position.objects.filter(strategy__portfolio=book).exists()


def test_a_cent_of_cost_missing_from_a_fill_breaks_the_conservation_of_money(book):
    trade = Trade.objects.filter(strategy__portfolio=book, reason="signal").order_by("id")[3]
    Trade.objects.filter(pk=trade.pk).update(cost=trade.cost + 0.01)
    problems = _one_problem(book)
    assert all("capital moved" in p or "no rebalance" in p for p in problems), problems


def test_a_lost_fill_breaks_positions_equity_and_the_stored_book(book):
    trade = Trade.objects.filter(strategy__portfolio=book).order_by("-date", "-id").first()
    Trade.objects.filter(pk=trade.pk).delete()
    problems = " ".join(_one_problem(book))
    assert "cash + marked positions" in problems and "sum of fills" in problems


def test_a_cent_of_cash_in_one_book_snapshot_breaks_its_equity_and_the_portfolio_sum(book):
    snap = StrategySnapshot.objects.filter(strategy__portfolio=book).order_by("date")[30]
    StrategySnapshot.objects.filter(pk=snap.pk).update(cash=snap.cash + 0.01)
    problems = " ".join(_one_problem(book))
    assert "cash + marked positions" in problems and "portfolio cash" in problems


def test_a_wrong_netted_exposure_or_position_count_is_seen(book):
    snap = PortfolioSnapshot.objects.filter(portfolio=book).order_by("date")[35]
    PortfolioSnapshot.objects.filter(pk=snap.pk).update(
        gross_exposure=snap.gross_exposure + 0.01, positions_net=snap.positions_net + 1
    )
    problems = " ".join(_one_problem(book))
    assert "gross_exposure" in problems and "positions_net" in problems


def test_a_stored_position_that_differs_from_its_fills_is_seen(book):
    position = Position.objects.filter(strategy__portfolio=book).first()
    Position.objects.filter(pk=position.pk).update(quantity=position.quantity * (1 + 1e-6))
    assert "sum of fills" in " ".join(_one_problem(book))


def test_a_signal_fill_inside_an_operator_pause_is_seen(book):
    trade = Trade.objects.filter(strategy__portfolio=book, reason="signal").order_by("id").last()
    name = trade.strategy.name
    before = PortfolioSnapshot.objects.filter(portfolio=book, date__lt=trade.date).latest("date")
    problems = _one_problem(book, [Pause(name, before.date)])
    assert any(f"{name}: operator-paused strategy traded" in p for p in problems)
    assert any("operator-paused strategy stored as active" in p for p in problems)
