"""Max position weight and open-position MAE through the update path: stored on every
snapshot, equal to the formula applied to the stored positions and closes, shown on the
strategy and risk pages and given by the API and the risk export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import PortfolioSnapshot, Position, PriceBar, Strategy, StrategySnapshot
from portfolio.services.config import allocation_spec_read
from reporting.exports import risk_frame

CONFIG = Path(__file__).resolve().parents[2] / "config"
AS_OF = date(1990, 6, 29)
pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    portfolio = portfolio_configure(
        spec=allocation_spec_read(CONFIG / "strategy_allocation.yaml"), source="demo"
    )
    run_update(as_of=AS_OF, load_prices=False)
    portfolio.refresh_from_db()
    return portfolio


def _expected_at_last_close(strategy: Strategy) -> tuple[float, float]:
    """The formula of risk/engine/excursion.py on the stored positions: weight = max
    |q * close * m| / equity; MAE = max over positions of max(0, -s (W - A) / A), W the
    worst close since the entry date."""
    snap = StrategySnapshot.objects.get(strategy=strategy, date=AS_OF)
    weight, mae = 0.0, 0.0
    for p in Position.objects.filter(strategy=strategy).select_related("instrument"):
        bars = PriceBar.objects.filter(instrument=p.instrument, date__lte=AS_OF)
        close = float(bars.get(date=AS_OF).close)
        value = abs(p.quantity * close * float(p.instrument.multiplier))
        weight = max(weight, value / snap.equity)
        since = bars.filter(date__gte=p.entry_date).values_list("close", flat=True)
        since = [float(c) for c in since]
        side = 1.0 if p.quantity > 0 else -1.0
        worst = min(since) if side > 0 else max(since)
        a = p.avg_entry_price
        mae = max(mae, max(0.0, -side * (worst - a) / a))
    return weight, mae


def test_every_snapshot_row_stores_the_open_position_figures(demo):
    strategy_rows = StrategySnapshot.objects.filter(strategy__portfolio=demo)
    assert strategy_rows.count() > 5 * 50
    assert not strategy_rows.filter(open_mae__isnull=True).exists()
    assert not strategy_rows.filter(max_position_weight__isnull=True, equity__gt=0).exists()
    assert strategy_rows.filter(open_mae__gt=0).exists()  # the figure is not always 0
    assert not PortfolioSnapshot.objects.filter(portfolio=demo, open_mae__isnull=True).exists()


def test_the_stored_figures_equal_the_formula_on_the_stored_positions_and_closes(demo):
    checked = 0
    for s in Strategy.objects.filter(portfolio=demo):
        snap = StrategySnapshot.objects.get(strategy=s, date=AS_OF)
        weight, mae = _expected_at_last_close(s)
        assert snap.max_position_weight == pytest.approx(weight, rel=1e-12, abs=0), s.name
        assert snap.open_mae == pytest.approx(mae, rel=1e-12, abs=1e-15), s.name
        checked += snap.positions_count
    assert checked > 0


def test_the_portfolio_mae_is_the_largest_strategy_mae_of_the_same_close(demo):
    for snap in PortfolioSnapshot.objects.filter(portfolio=demo):
        books = StrategySnapshot.objects.filter(strategy__portfolio=demo, date=snap.date)
        assert snap.open_mae == max(b.open_mae for b in books), snap.date


def test_the_strategy_page_shows_its_max_position_weight_and_open_mae(demo, logged_in):
    s = Strategy.objects.get(portfolio=demo, name="momentum_60")
    snap = StrategySnapshot.objects.get(strategy=s, date=AS_OF)
    html = logged_in.get("/strategy/momentum_60/").content.decode()
    assert f'id="strategy-max-position-weight">{snap.max_position_weight * 100:.2f}%<' in html
    assert f'id="strategy-open-mae">{snap.open_mae * 100:.2f}%<' in html


def test_the_risk_page_shows_the_portfolio_mae_and_each_books_figures(demo, logged_in):
    snap = PortfolioSnapshot.objects.get(portfolio=demo, date=AS_OF)
    html = logged_in.get("/risk/").content.decode()
    assert f'id="portfolio-open-mae">{snap.open_mae * 100:.2f}%<' in html
    for b in StrategySnapshot.objects.filter(strategy__portfolio=demo, date=AS_OF):
        row = (
            f"<tr><td>{b.strategy.name}</td><td>{b.max_position_weight * 100:.2f}%</td>"
            f"<td>{b.open_mae * 100:.2f}%</td></tr>"
        )
        assert row in html, b.strategy.name


def test_the_api_gives_the_figures_as_stored(demo, logged_in):
    strategies = logged_in.get(f"/api/equity/strategies/?start={AS_OF}").json()
    rows = strategies["results"] if isinstance(strategies, dict) else strategies
    assert rows
    for row in rows:
        snap = StrategySnapshot.objects.get(strategy_id=row["strategy_id"], date=AS_OF)
        assert (row["max_position_weight"], row["open_mae"]) == (
            snap.max_position_weight,
            snap.open_mae,
        )
    snap = PortfolioSnapshot.objects.get(portfolio=demo, date=AS_OF)
    for url in (f"/api/equity/portfolio/?start={AS_OF}", f"/api/risk/snapshots/?start={AS_OF}"):
        body = logged_in.get(url).json()
        rows = body["results"] if isinstance(body, dict) else body
        assert [r["open_mae"] for r in rows] == [snap.open_mae], url


def test_the_risk_export_lists_the_portfolio_mae(demo):
    frame = risk_frame(demo)
    snap = PortfolioSnapshot.objects.get(portfolio=demo, date=AS_OF)
    assert frame["open_mae"].iloc[-1] == snap.open_mae
