"""An admin save writes only the fields the operator changed: an update chunk that commits
between the admin loading the object and saving it keeps every engine field it wrote
(a strategy's cash, P&L, NAV and targets; a portfolio's last applied date and equity).

The interleave is made deterministic by committing the chunk inside the admin's save,
after the form has been bound to the object it loaded and before the row is written."""

from __future__ import annotations

from datetime import date

import pytest

from operations.tests import test_admin_controls as controls
from operations.tests.test_admin_controls import _form, _portfolio_form
from operations.update import portfolio_apply
from portfolio import admin as portfolio_admin
from portfolio import selectors
from portfolio.models import ConfigChange, Portfolio, Strategy

pytestmark = pytest.mark.django_db

ENGINE_FIELDS = [
    "cash",
    "realized_pnl",
    "last_equity",
    "nav",
    "peak_nav",
    "pending_targets",
    "pending_decided_on",
    "current_allocation",
    "history_days",
]
FIRST, SECOND = date(1990, 6, 29), date(1990, 9, 28)
admin_client = pytest.fixture(controls.admin_client.__wrapped__)
portfolio = pytest.fixture(controls.portfolio.__wrapped__)


def _chunk_inside_the_save(monkeypatch, portfolio: Portfolio) -> dict:
    """Make the admin's save commit the chunk up to SECOND first; return what it wrote."""
    real, seen = portfolio_admin.config_form_save, {}

    def save_after_a_chunk(**kwargs):
        closes = selectors.price_frame(end=SECOND)
        portfolio_apply(portfolio=Portfolio.objects.get(pk=portfolio.pk), closes=closes)
        seen["strategies"] = {
            s["name"]: s for s in Strategy.objects.filter(portfolio=portfolio).values()
        }
        seen["portfolio"] = Portfolio.objects.filter(pk=portfolio.pk).values().get()
        return real(**kwargs)

    monkeypatch.setattr(portfolio_admin, "config_form_save", save_after_a_chunk)
    return seen


def _engine(values: dict) -> dict:
    return {k: values[k] for k in ENGINE_FIELDS}


def test_a_chunk_committed_while_a_strategy_form_is_saved_keeps_its_engine_fields(
    admin_client, portfolio, monkeypatch
):
    portfolio_apply(portfolio=portfolio, closes=selectors.price_frame(end=FIRST))
    s = portfolio.strategies.get(name="momentum_60")
    loaded = Strategy.objects.filter(pk=s.pk).values().get()
    seen = _chunk_inside_the_save(monkeypatch, portfolio)

    response = admin_client.post(
        f"/admin/portfolio/strategy/{s.pk}/change/", _form(s, slippage_bps="3")
    )

    assert response.status_code == 302
    after = Strategy.objects.filter(pk=s.pk).values().get()
    chunk = seen["strategies"]["momentum_60"]
    assert _engine(chunk) != _engine(loaded)  # the chunk did move the book
    assert _engine(after) == _engine(chunk)
    assert str(after["slippage_bps"]) == "3.0000"  # and the operator's edit is kept
    row = ConfigChange.objects.get(source="admin")
    assert (row.field, row.before, row.after) == ("slippage_bps", None, 3.0)


def test_a_chunk_committed_while_the_portfolio_form_is_saved_keeps_the_book(
    admin_client, portfolio, monkeypatch
):
    portfolio_apply(portfolio=portfolio, closes=selectors.price_frame(end=FIRST))
    url, data, prefix = _portfolio_form(admin_client, portfolio)
    data["rebalance_threshold"] = "0.07"
    data[f"{prefix}-0-status"] = "paused"  # the inline saves a strategy as well
    seen = _chunk_inside_the_save(monkeypatch, portfolio)

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    stored = Portfolio.objects.filter(pk=portfolio.pk).values().get()
    for field in ("last_applied_date", "peak_equity", "last_equity"):
        assert stored[field] == seen["portfolio"][field], field
    assert stored["last_applied_date"] > FIRST
    assert str(stored["rebalance_threshold"]).startswith("0.07")
    for name, chunk in seen["strategies"].items():
        after = Strategy.objects.filter(portfolio=portfolio, name=name).values().get()
        assert _engine(after) == _engine(chunk), name
    assert Strategy.objects.filter(portfolio=portfolio, status="paused").count() == 1
