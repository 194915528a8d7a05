"""The /scenarios/ page, the Risk page's stress panel, the on-demand forms and the API:
what a stored result shows, what a refused value answers, and that staff edits of the
windows and shocks are audited."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.urls import reverse

from operations.tests.scenario_setup import stressed_portfolio
from portfolio.models import ConfigChange
from risk.models import ScenarioRun, ShockScenario, StressWindow
from risk.services.scenarios import stress_record

COVID = (date(2020, 2, 19), date(2020, 3, 23))


@pytest.fixture
def live(db):
    return stressed_portfolio()


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("desk", password="x-not-real-1", is_staff=True)
    client.force_login(user)
    return client


def test_the_page_shows_each_stored_stress_result_with_its_chart(live, logged_in):
    run = stress_record(
        portfolio=live,
        name="COVID crash",
        start=COVID[0],
        end=COVID[1],
        mode="hold",
        trigger="command",
    )
    html = logged_in.get(reverse("reporting:scenarios")).content.decode()
    row = re.search(r'<table id="stress-table">.*?</table>', html, re.S).group(0)
    assert "COVID crash" in row and "2020-02-19 .. 2020-03-23" in row
    assert f"{run.result['portfolio']['final_pnl']:,.0f}" in row
    assert "max_drawdown" in row  # the -10 % limit fires in March 2020
    assert 'id="chart-stress-hold"' in html
    assert "stale" not in row


def test_the_risk_page_has_the_stress_panel(live, logged_in):
    stress_record(
        portfolio=live,
        name="COVID crash",
        start=COVID[0],
        end=COVID[1],
        mode="hold",
        trigger="command",
    )
    html = logged_in.get(reverse("reporting:risk")).content.decode()
    panel = re.search(r'<section class="panel" id="stress-testing">.*?</section>', html, re.S)
    assert panel and "COVID crash" in panel.group(0) and "hold" in panel.group(0)


def test_a_page_run_stores_a_result_and_a_bad_value_stores_nothing(live, logged_in):
    url = reverse("reporting:scenario-run")
    ok = logged_in.post(
        url,
        {"kind": "stress", "start": "2020-02-19", "end": "2020-03-23", "mode": "hold"},
        follow=True,
    )
    assert ScenarioRun.objects.filter(kind="stress", status="success").count() == 1
    assert "done in" in ok.content.decode()
    bad = logged_in.post(url, {"kind": "shock", "market": "-5x%"}, follow=True)
    assert "Not run: market: &#x27;-5x%&#x27; is not a percentage" in bad.content.decode()
    assert ScenarioRun.objects.count() == 1


def test_a_shock_form_in_percent_moves_by_sector(live, logged_in):
    logged_in.post(
        reverse("reporting:scenario-run"),
        {
            "kind": "shock",
            "market": "-5%",
            "sectors": "Information Technology: -20%",
        },
    )
    run = ScenarioRun.objects.get(kind="shock")
    assert run.params == {
        "market": -0.05,
        "sectors": {"Information Technology": -0.2},
        "tickers": {},
    }
    assert run.name == "Information Technology -20%, everything else -5%"


def test_staff_edit_windows_with_an_audit_row_and_others_cannot(live, client, staff):
    add = reverse("reporting:scenario-window-add")
    staff.post(
        add, {"name": "Flash crash", "start": "2010-05-06", "end": "2010-05-07", "enabled": "on"}
    )
    w = StressWindow.objects.get(name="Flash crash")
    assert (w.start, w.end, w.enabled) == (date(2010, 5, 6), date(2010, 5, 7), True)
    assert ConfigChange.objects.filter(object_type="StressWindow", field="start").exists()
    r = staff.post(
        reverse("reporting:scenario-window", args=[w.pk]),
        {"name": "Flash crash", "start": "2010-05-07", "end": "2010-05-06"},
        follow=True,
    )
    assert "Not saved: end:" in r.content.decode()
    w.refresh_from_db()
    assert w.start == date(2010, 5, 6)
    staff.post(reverse("reporting:scenario-window", args=[w.pk]), {"delete": "1"})
    assert not StressWindow.objects.filter(name="Flash crash").exists()


def test_a_user_who_is_not_staff_cannot_edit_a_shock(live, logged_in):
    shock = ShockScenario.objects.first()
    r = logged_in.post(reverse("reporting:scenario-shock", args=[shock.pk]), {"delete": "1"})
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    assert ShockScenario.objects.filter(pk=shock.pk).exists()


def test_the_api_runs_a_scenario_and_lists_it_without_its_body(live, admin_client):
    r = admin_client.post(
        "/api/scenarios/run/",
        {"kind": "stress", "params": {"window": "2020-02-19:2020-03-23", "mode": "hold"}},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "success" and body["result"]["window"]["bars"] > 20
    listed = admin_client.get("/api/scenarios/").json()["results"]
    assert listed[0]["id"] == body["id"] and "result" not in listed[0]
    one = admin_client.get(f"/api/scenarios/{body['id']}/").json()
    assert one["result"]["portfolio"]["pnl"]["2020-02-19"] == 0.0


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"kind": "stress", "params": {"window": "2020-03-23:2020-02-19"}}, "window"),
        ({"kind": "stress", "params": {"window": "2020-02-19:2020-03-23", "mode": "x"}}, "mode"),
        ({"kind": "shock", "params": {"market": "-5%"}}, "market"),
        ({"kind": "montecarlo", "params": {"paths": 0}}, "paths"),
        ({"kind": "nothing"}, "kind"),
    ],
)
def test_the_api_refuses_a_bad_value_naming_the_field(live, admin_client, payload, field):
    r = admin_client.post("/api/scenarios/run/", payload, content_type="application/json")
    assert r.status_code == 400 and field in r.json(), r.content
    assert ScenarioRun.objects.count() == 0


def test_the_page_shows_the_projection_the_regime_and_the_walk_forward(live, logged_in):
    from risk.services.projections import montecarlo_record, regime_record, walkforward_record

    mc = montecarlo_record(portfolio=live, params={"paths": 1000, "horizon": 63}, trigger="page")
    regime_record(portfolio=live, params={"window": 20}, trigger="page")
    walkforward_record(
        portfolio=live, params={"strategy": "fast", "lookbacks": "20,60"}, trigger="page"
    )
    html = logged_in.get(reverse("reporting:scenarios")).content.decode()
    assert f"{mc.result['p_breach_drawdown']:.1%}" in re.search(
        r'id="mc-p-breach">([^<]*)<', html
    ).group(1)
    for chart in ("mc-fan", "mc-terminal", "mc-drawdown", "regime", "regime-stat", "walkforward"):
        assert f'id="chart-{chart}"' in html, chart
    table = re.search(r'<table id="walkforward-table">.*?</table>', html, re.S).group(0)
    assert "lookback=20" in table and "walk-forward" in table
    assert 'id="regime-average"' in html
