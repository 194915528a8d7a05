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
    with django_assert_num_queries(6):  # session, user, portfolio, 2 snapshots, strategies
        response = logged_in.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="total-value">{float(snap.equity):.2f}<' in html
    for name in ("momentum_60", "mean_reversion_20", "trend_following_50"):
        assert name in html


def test_the_api_lists_strategies_for_a_logged_in_user(logged_in, client):
    portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    data = logged_in.get("/api/strategies/").json()
    assert data["count"] == 5
    client.logout()
    assert client.get("/api/strategies/").status_code == 403
