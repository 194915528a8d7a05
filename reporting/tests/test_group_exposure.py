"""The risk page's sector and asset-class exposure against their limits."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import Portfolio
from portfolio.services.config import allocation_spec_read
from reporting.pages.risk import group_exposure_rows
from reporting.tests.test_pages import DEMO
from risk.models import RiskLimit

IT = "Information Technology"


def _limit(scope: str, metric: str, threshold: float, group: str = "") -> RiskLimit:
    return RiskLimit(
        name=f"{scope}{group}", scope=scope, metric=metric, threshold=threshold, group=group
    )


def test_group_rows_net_per_ticker_across_books_then_compare_with_the_groups_cap():
    # Equity 1000. AAPL: A +300, B -100 -> netted +200; MSFT +100 (both IT); XOM -150
    # (Energy). IT net |200 + 100| / 1000 = 0.30, gross 0.30; Energy 0.15 both ways.
    # Equity (all three): net |200 + 100 - 150| = 0.15, gross 450 / 1000 = 0.45.
    positions = pd.DataFrame(
        [
            ("A", "AAPL", IT, "equity", 300.0),
            ("B", "AAPL", IT, "equity", -100.0),
            ("A", "MSFT", IT, "equity", 100.0),
            ("B", "XOM", "Energy", "equity", -150.0),
        ],
        columns=["strategy", "ticker", "sector", "asset_class", "value"],
    )
    limits = [
        _limit("sector", "group_net_weight", 0.40),
        _limit("sector", "group_net_weight", 0.25, group=IT),
        _limit("asset_class", "group_gross_weight", 0.40),
    ]
    rows = group_exposure_rows(positions, 1000.0, limits)
    got = [
        (r["kind"], r["group"], r["net"], r["gross"], r["cap"], r["basis"], r["over"]) for r in rows
    ]
    assert got == [
        ("Sector", IT, pytest.approx(0.30), pytest.approx(0.30), 0.25, "net", True),
        ("Sector", "Energy", pytest.approx(0.15), pytest.approx(0.15), 0.40, "net", False),
        ("Asset class", "equity", pytest.approx(0.15), pytest.approx(0.45), 0.40, "gross", True),
    ]


@pytest.mark.django_db
def test_the_risk_page_shows_each_sector_and_asset_class_against_its_cap(logged_in):
    portfolio_configure(spec=allocation_spec_read(DEMO), risk=None, source="demo")
    run_update(as_of=date(1990, 6, 29), load_prices=False)
    portfolio = Portfolio.objects.get()
    RiskLimit.objects.create(
        portfolio=portfolio,
        name=f"sector_limits[{IT}]",
        scope="sector",
        group=IT,
        metric="group_net_weight",
        direction="max",
        threshold=0.001,  # the demo's IT net weight is about 0.5% at this close
        severity="low",
        action="alert_only",
    )
    html = logged_in.get("/risk/").content.decode()
    assert 'id="group-exposure"' in html
    row = html[html.index(f"<td>{IT}</td>") :].split("</tr>")[0]
    assert "0.1% (net)" in row and "⚠ over" in row
    assert "<td>Asset class</td><td>equity</td>" in html
