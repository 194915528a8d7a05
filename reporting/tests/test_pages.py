"""The overview page: login required, numbers equal to the stored snapshot."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from portfolio.models import PortfolioSnapshot
from portfolio.services.config import allocation_spec_read, portfolio_configure
from portfolio.services.update import run_update

DEMO = Path(__file__).resolve().parents[2] / "config" / "strategy_allocation.yaml"
pytestmark = pytest.mark.django_db


def test_the_overview_redirects_anonymous_users_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_login_page_uses_the_project_template(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and b"Log in" in response.content


def test_the_overview_shows_the_latest_snapshot_numbers(logged_in, django_assert_num_queries):
    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    run_update(as_of=date(1990, 6, 29), load_prices=False)
    snap = PortfolioSnapshot.objects.latest("date")
    # session, user, portfolio, 2 snapshots, last rebalance, strategies, pending requests
    with django_assert_num_queries(8):
        response = logged_in.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="total-value">{float(snap.equity):.2f}<' in html
    for name in ("momentum_60", "mean_reversion_20", "trend_following_50"):
        assert name in html
    assert 'id="last-rebalance"' in html and "2020-06-01" not in html
    assert "on bar 1 of the period" in html


def test_the_overview_explains_each_allocation_and_shows_pending_requests(logged_in):
    from portfolio.services.rebalance import rebalance_request

    spec = allocation_spec_read(DEMO)
    portfolio = portfolio_configure(spec=spec, source="demo")
    portfolio.allocation_method, portfolio.allocation_params = "inverse_volatility", {}
    portfolio.save()
    run_update(as_of=date(1990, 6, 29), load_prices=False)
    rebalance_request(portfolio=portfolio, request_key="page-test")
    html = logged_in.get("/").content.decode()
    # June 1990: every book is younger than the 63-day default: static, and it says why
    assert "static weight until it has 63 days of history" in html
    assert "1 manual request pending" in html


def test_the_api_lists_strategies_for_a_logged_in_user(logged_in, client):
    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    data = logged_in.get("/api/strategies/").json()
    assert data["count"] == 5
    client.logout()
    assert client.get("/api/strategies/").status_code == 403
