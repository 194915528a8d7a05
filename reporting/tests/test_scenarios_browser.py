"""The /scenarios/ page in real Chromium with a result of every kind stored: every chart
is drawn with data, nothing throws, and the page fits a phone screen (wide tables scroll
inside their card)."""

from __future__ import annotations

import pytest

from reporting.tests.test_browser import (  # noqa: F401 (prices_restored: a fixture)
    CHARTS_JS,
    CHROMIUM,
    SHOTS,
    _open,
    logged_in_page,
    prices_restored,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def scenarios_stored(prices_restored, transactional_db):  # noqa: F811 (the imported fixture)
    from operations.tests.scenario_setup import stressed_portfolio
    from portfolio.feeds import BundledProvider
    from portfolio.services.prices import prices_load
    from risk.services.scenario_requests import scenario_request

    prices_load(provider=BundledProvider(), strict=True)  # a no-op when present
    p = stressed_portfolio()
    for kind, params in [
        ("stress", {"window": "2020-02-19:2020-03-23", "mode": "hold"}),
        ("stress", {"window": "2008-09-01:2008-12-31", "mode": "run"}),
        ("shock", {"market": -0.05, "sectors": {"Information Technology": -0.2}}),
        ("montecarlo", {"paths": 2000, "horizon": 126}),
        ("regime", {"window": 20}),
        ("walkforward", {"strategy": "fast", "lookbacks": "20,60"}),
    ]:
        run = scenario_request(portfolio=p, kind=kind, params=params, trigger="page")
        assert run.status == "success", (kind, run.error)
    return p


def test_the_scenarios_page_draws_every_chart_and_fits_a_phone(
    scenarios_stored, live_server, django_user_model, client
):
    with logged_in_page(live_server, django_user_model, client) as page:
        _open(page, live_server.url + "/scenarios/")
        charts = {c["id"]: c for c in page.evaluate(CHARTS_JS)}
        expected = {
            "stress-hold",
            "stress-run",
            "stress-strategies",
            "shock-strategies",
            "mc-fan",
            "mc-terminal",
            "mc-drawdown",
            "regime",
            "regime-stat",
            "walkforward",
        }
        assert {f"chart-{n}" for n in expected} <= set(charts)
        for chart in charts.values():
            assert chart["drawn"] and chart["points"] > 0, chart
        page.set_viewport_size({"width": 390, "height": 844})
        _open(page, live_server.url + "/scenarios/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 392
        page.screenshot(path=str(SHOTS / "scenarios-phone.png"), full_page=True)
        assert page.errors == []
