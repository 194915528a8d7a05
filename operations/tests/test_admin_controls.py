"""The admin refuses what the YAML refuses (the operator controls' validator), records
its saves in the audit trail with before/after, and keeps history read-only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.forms.models import model_to_dict

from operations.config import portfolio_configure
from portfolio.models import ConfigChange, Portfolio, Strategy
from portfolio.services.config import allocation_spec_read
from portfolio.services.controls import Origin, strategy_retire

CONFIG = Path(__file__).resolve().parents[2] / "config"
pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, user):
    user.is_staff = user.is_superuser = True
    user.save()
    client.force_login(user)
    return client


@pytest.fixture
def portfolio() -> Portfolio:
    return portfolio_configure(
        spec=allocation_spec_read(CONFIG / "strategy_allocation.yaml"), source="demo"
    )


def _form(s: Strategy, **changes) -> dict:
    fields = [
        "parameters",
        "signal_type",
        "target_allocation",
        "status",
        "risk_config",
        "commission_bps",
        "slippage_bps",
        "trade_band",
        "position_order",
    ]
    data = {k: v for k, v in model_to_dict(s, fields=fields).items() if v is not None}
    data.update(changes)
    for key in ("parameters", "risk_config"):
        if not isinstance(data[key], str):
            data[key] = json.dumps(data[key])
    return data


def _state():
    return list(Strategy.objects.order_by("pk").values()), ConfigChange.objects.count()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"target_allocation": "0.95"}, "allocations sum to 1.7"),
        ({"parameters": '{"lookback": -5}'}, "parameters.lookback"),
        ({"risk_config": '{"risk_scale": 7.5}'}, "risk_config.risk_scale: unknown key"),
    ],
)
def test_the_strategy_form_refuses_what_the_yaml_refuses(
    admin_client, portfolio, changes, expected
):
    s = portfolio.strategies.get(name="momentum_60")
    before = _state()
    response = admin_client.post(f"/admin/portfolio/strategy/{s.pk}/change/", _form(s, **changes))
    assert response.status_code == 200  # the form again, with its error
    assert expected in response.content.decode()
    assert _state() == before


def test_risk_scale_is_no_field_of_the_strategy_form(admin_client, portfolio):
    s = portfolio.strategies.first()
    html = admin_client.get(f"/admin/portfolio/strategy/{s.pk}/change/").content.decode()
    assert "risk_scale" not in html and 'name="portfolio"' not in html


def test_an_admin_pause_is_audited_with_before_and_after(admin_client, portfolio):
    s = portfolio.strategies.get(name="momentum_60")
    response = admin_client.post(
        f"/admin/portfolio/strategy/{s.pk}/change/", _form(s, status="paused")
    )
    assert response.status_code == 302
    s.refresh_from_db()
    assert s.status == "paused"
    row = ConfigChange.objects.get(source="admin")
    assert (row.field, row.before, row.after, row.actor) == ("status", "active", "paused", "quant")
    assert row.client_ip == "127.0.0.1" and row.portfolio_id == portfolio.pk


def _portfolio_form(admin_client, portfolio) -> tuple[str, dict, str]:
    """The portfolio change form as the admin renders it, ready to post back unchanged:
    (url, data, the strategy inline's prefix)."""
    url = f"/admin/portfolio/portfolio/{portfolio.pk}/change/"
    html = admin_client.get(url)
    form = html.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}

    data["allocation_params"] = json.dumps(data.get("allocation_params") or {})
    data["trade_band"] = portfolio.trade_band
    formset = html.context["inline_admin_formsets"][0].formset
    prefix = formset.prefix
    data.update({f"{prefix}-{k}": v for k, v in formset.management_form.initial.items()})
    for i, f in enumerate(formset.forms):
        data[f"{prefix}-{i}-id"] = f.instance.pk
        data[f"{prefix}-{i}-portfolio"] = portfolio.pk
        data[f"{prefix}-{i}-target_allocation"] = f.instance.target_allocation
        data[f"{prefix}-{i}-status"] = f.instance.status
    for key in ("whole_shares", "is_backtest"):
        if not data.get(key):
            data.pop(key, None)
    return url, data, prefix


def test_a_portfolio_edit_in_the_admin_is_audited(admin_client, portfolio):
    url, data, _ = _portfolio_form(admin_client, portfolio)
    data["rebalance_threshold"] = "0.07"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    row = ConfigChange.objects.get(source="admin")
    assert (row.field, row.after, row.object_type) == ("rebalance_threshold", 0.07, "Portfolio")


def _retire(portfolio, name: str) -> Strategy:
    """Retire ``name`` through the page's service, its allocation going to momentum_120."""
    s = portfolio.strategies.get(name=name)
    others = {n: float(a) for n, a in portfolio.strategies.values_list("name", "target_allocation")}
    others["momentum_120"] += others.pop(name)
    strategy_retire(strategy=s, allocations=others, origin=Origin(actor="alice", source="page"))
    s.refresh_from_db()
    return s


def test_the_inline_refuses_to_set_a_retired_strategy_back_to_active(admin_client, portfolio):
    retired = _retire(portfolio, "momentum_60")
    url, data, prefix = _portfolio_form(admin_client, portfolio)
    row = next(k for k, v in data.items() if k.endswith("-id") and v == retired.pk)
    data[row.replace("-id", "-status")] = "active"
    before = _state()
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, with its error
    assert "strategy momentum_60.status: a retired strategy stays paused" in (
        response.content.decode()
    )
    assert _state() == before


def test_a_retired_strategys_inline_row_offers_only_paused_and_keeps_its_allocation(
    admin_client, portfolio
):
    retired = _retire(portfolio, "momentum_60")
    url, data, prefix = _portfolio_form(admin_client, portfolio)
    formset = admin_client.get(url).context["inline_admin_formsets"][0].formset
    form = next(f for f in formset.forms if f.instance.pk == retired.pk)
    assert list(form.fields["status"].widget.choices) == [("paused", "paused (retired)")]
    assert form.fields["target_allocation"].disabled
    # a forged allocation for the retired row is ignored: the stored 0 stays
    row = next(k for k, v in data.items() if k.endswith("-id") and v == retired.pk)
    data[row.replace("-id", "-target_allocation")] = "0.2"
    before = _state()
    assert admin_client.post(url, data).status_code == 302
    assert _state() == before
    # and its own change page shows status and allocation read-only
    page = admin_client.get(f"/admin/portfolio/strategy/{retired.pk}/change/")
    assert {"status", "target_allocation"}.isdisjoint(page.context["adminform"].form.fields)


def test_an_active_strategy_is_still_paused_from_the_inline(admin_client, portfolio):
    url, data, prefix = _portfolio_form(admin_client, portfolio)
    s = portfolio.strategies.get(name="momentum_200")
    row = next(k for k, v in data.items() if k.endswith("-id") and v == s.pk)
    data[row.replace("-id", "-status")] = "paused"
    assert admin_client.post(url, data).status_code == 302
    s.refresh_from_db()
    assert s.status == "paused"
    change = ConfigChange.objects.get(source="admin", object_repr="momentum_200")
    assert (change.field, change.before, change.after) == ("status", "active", "paused")


@pytest.mark.parametrize(
    "model",
    [
        "portfolio/trade",
        "portfolio/strategysnapshot",
        "portfolio/portfoliosnapshot",
        "portfolio/updaterun",
        "portfolio/rebalanceevent",
        "portfolio/configchange",
        "risk/violation",
        "risk/alertdelivery",
    ],
)
def test_history_tables_are_read_only_in_the_admin(admin_client, model):
    from django.apps import apps
    from django.contrib import admin

    app, name = model.split("/")
    model_admin = admin.site._registry[apps.get_model(app, name)]
    request = admin_client.get(f"/admin/{model}/").wsgi_request
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_a_violation_is_acknowledged_in_the_admin_with_a_note(admin_client, portfolio):
    from risk.models import RiskLimit, Violation

    limit = RiskLimit.objects.create(
        portfolio=portfolio,
        name="lev",
        scope="portfolio",
        metric="leverage",
        direction="max",
        threshold=2.0,
        severity="high",
        action="alert",
    )
    v = Violation.objects.create(
        portfolio=portfolio,
        limit=limit,
        severity="high",
        date="1990-01-05",
        value=2.5,
        threshold=2.0,
        action_taken="alert",
    )
    url = "/admin/risk/violation/"
    data = {"action": "acknowledge", "_selected_action": [v.pk]}
    page = admin_client.post(url, data)
    assert page.status_code == 200 and 'name="note"' in page.content.decode()
    admin_client.post(url, {**data, "apply": "1", "note": "known: rebalancing"})
    v.refresh_from_db()
    assert (v.acknowledged_by, v.acknowledged_note) == ("quant", "known: rebalancing")
    assert v.status == "open"  # the risk manager's, untouched
