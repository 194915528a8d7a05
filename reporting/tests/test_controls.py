"""Operator controls on the configuration page and in the admin: staff only, validated by
the YAML's rules (a bad value is refused with the field and the rule, and nothing changes),
every change in the audit trail with who, where and before/after."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import ConfigChange, Portfolio, Strategy, Trade
from portfolio.services.config import allocation_spec_read
from risk.models import AlertDelivery, Violation
from risk.services import risk_spec_read

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEMO = CONFIG / "strategy_allocation.yaml"
pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(logged_in, user):
    user.is_staff = True
    user.is_superuser = True  # the admin needs model permissions too
    user.save()
    return logged_in


def _configure(*, risk: bool = False) -> Portfolio:
    return portfolio_configure(
        spec=allocation_spec_read(DEMO),
        risk=risk_spec_read(CONFIG / "risk_limits.yaml") if risk else None,
        source="demo",
    )


def _post(client, portfolio, control, **data):
    return client.post(f"/config/{portfolio.pk}/{control}/", data, follow=True)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _state():
    """Everything a refused control must leave unchanged."""
    return (
        list(Strategy.objects.order_by("pk").values()),
        ConfigChange.objects.count(),
    )


def test_a_plain_user_sees_no_forms_and_gets_403_on_a_control(logged_in):
    portfolio = _configure()
    html = logged_in.get("/config/").content.decode()
    assert 'id="actions"' in html and "<form" not in html.split("<main")[1].split("</main>")[0]
    before = _state()
    s = portfolio.strategies.first()
    assert logged_in.post(f"/config/{portfolio.pk}/pause/", {"strategy": s.pk}).status_code == 403
    assert _state() == before


def test_anonymous_users_are_sent_to_login_by_a_control(client):
    portfolio = _configure()
    response = client.post(f"/config/{portfolio.pk}/pause/", {})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_control_needs_the_csrf_token(staff, user):
    from django.test import Client

    portfolio = _configure()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    s = portfolio.strategies.first()
    assert strict.post(f"/config/{portfolio.pk}/pause/", {"strategy": s.pk}).status_code == 403
    html = strict.get("/config/").content.decode()
    assert "csrfmiddlewaretoken" in html and 'id="pause-momentum_60"' in html


def test_staff_pause_and_resume_are_audited_with_who_where_and_before_after(staff):
    portfolio = _configure()
    s = portfolio.strategies.get(name="momentum_60")
    response = _post(staff, portfolio, "pause", strategy=s.pk)
    assert "momentum_60 paused" in " ".join(_messages(response))
    s.refresh_from_db()
    assert s.status == "paused"
    row = ConfigChange.objects.filter(field="status").latest("id")
    assert (row.actor, row.source, row.client_ip) == ("quant", "page", "127.0.0.1")
    assert (row.before, row.after, row.object_repr) == ("active", "paused", "momentum_60")
    assert row.portfolio_id == portfolio.pk
    response = _post(staff, portfolio, "resume", strategy=s.pk)
    s.refresh_from_db()
    assert s.status == "active" and "resumes at the next bar" in " ".join(_messages(response))
    row = ConfigChange.objects.filter(field="status").latest("id")
    assert (row.before, row.after, row.source) == ("paused", "active", "page")
    html = response.content.decode()
    assert 'id="audit"' in html and "momentum_60" in html.split('id="audit"')[1]


def test_a_pause_on_the_page_stops_trading_from_the_next_bar(staff):
    portfolio = _configure()
    run_update(as_of=date(1990, 3, 30), load_prices=False)
    portfolio.refresh_from_db()
    t = portfolio.last_applied_date
    s = portfolio.strategies.get(name="mean_reversion_20")
    assert Trade.objects.filter(strategy=s, reason="signal").exists()
    _post(staff, portfolio, "pause", strategy=s.pk)
    run_update(as_of=date(1990, 6, 29), load_prices=False)
    portfolio.refresh_from_db()
    assert portfolio.last_applied_date > t
    assert not Trade.objects.filter(strategy=s, date__gt=t).exists()
    others = Trade.objects.filter(strategy__portfolio=portfolio, date__gt=t).exclude(strategy=s)
    assert others.exists()  # the rest of the book kept trading
    row = ConfigChange.objects.get(field="status", object_repr=s.name, source="page")
    assert (row.actor, row.before, row.after) == ("quant", "active", "paused")


def test_allocations_are_set_as_a_whole_set_summing_to_the_leverage_target(staff):
    portfolio = _configure()
    names = list(portfolio.strategies.order_by("name").values_list("name", flat=True))
    data = {f"allocation_{n}": 0.2 for n in names}
    data[f"allocation_{names[0]}"], data[f"allocation_{names[1]}"] = 0.3, 0.1
    response = _post(staff, portfolio, "allocations", **data)
    assert "target allocations changed" in " ".join(_messages(response))
    got = {s.name: float(s.target_allocation) for s in portfolio.strategies.all()}
    assert got[names[0]] == 0.3 and got[names[1]] == 0.1
    changed = ConfigChange.objects.filter(field="target_allocation", source="page")
    assert {c.object_repr for c in changed} >= {names[0], names[1]}


def test_an_allocation_sum_of_1_70_is_refused_on_the_page_and_nothing_changes(staff):
    portfolio = _configure()
    s = portfolio.strategies.order_by("name").first()
    before = _state()
    response = _post(staff, portfolio, "allocations", **{f"allocation_{s.name}": 0.95})
    text = " ".join(_messages(response))
    assert "Refused, nothing changed" in text and "allocations sum to 1.7" in text
    assert _state() == before


def test_a_negative_lookback_is_refused_on_the_page_and_nothing_changes(staff):
    portfolio = _configure()
    s = portfolio.strategies.get(name="momentum_60")
    before = _state()
    params = {**s.parameters, "lookback": -5}
    response = _post(
        staff, portfolio, "strategy", strategy=s.pk, parameters=json.dumps(params), risk_config=""
    )
    text = " ".join(_messages(response))
    assert "Refused" in text and "parameters.lookback" in text
    assert _state() == before


def test_risk_scale_cannot_be_set_through_risk_config_on_the_page(staff):
    portfolio = _configure()
    s = portfolio.strategies.get(name="momentum_60")
    before = _state()
    response = _post(
        staff,
        portfolio,
        "strategy",
        strategy=s.pk,
        parameters=json.dumps(s.parameters),
        risk_config=json.dumps({"risk_scale": 7.5}),
    )
    text = " ".join(_messages(response))
    assert "Refused" in text and "risk_config.risk_scale" in text and "unknown key" in text
    assert _state() == before


def test_a_malformed_stop_loss_is_refused_on_the_page_naming_the_strategy_and_key(staff):
    portfolio = _configure()
    s = portfolio.strategies.get(name="momentum_60")
    before = _state()
    response = _post(
        staff,
        portfolio,
        "strategy",
        strategy=s.pk,
        parameters=json.dumps(s.parameters),
        risk_config=json.dumps({"stop_loss": {"level": 0.08, "trailing": "yes"}}),
    )
    text = " ".join(_messages(response))
    assert "Refused" in text and "momentum_60.risk_config.stop_loss.trailing" in text
    assert _state() == before


def test_a_stop_loss_is_saved_from_the_page(staff):
    portfolio = _configure()
    s = portfolio.strategies.get(name="momentum_60")
    stop = {"stop_loss": {"level": 0.08, "trailing": True, "cooloff_bars": 5}}
    _post(
        staff,
        portfolio,
        "strategy",
        strategy=s.pk,
        parameters=json.dumps(s.parameters),
        risk_config=json.dumps(stop),
    )
    s.refresh_from_db()
    assert s.risk_config == stop


def test_a_valid_strategy_edit_is_audited_with_before_and_after(staff):
    portfolio = _configure()
    s = portfolio.strategies.get(name="momentum_60")
    old = dict(s.risk_config)
    _post(
        staff,
        portfolio,
        "strategy",
        strategy=s.pk,
        parameters=json.dumps(s.parameters),
        risk_config=json.dumps({"max_position_size": 0.2}),
    )
    s.refresh_from_db()
    assert s.risk_config == {"max_position_size": 0.2}
    row = ConfigChange.objects.get(field="risk_config", source="page")
    assert (row.before, row.after) == (old, {"max_position_size": 0.2})
    assert not ConfigChange.objects.filter(field="parameters", source="page").exists()


def test_a_limit_edit_is_validated_and_audited(staff):
    portfolio = _configure(risk=True)
    limit = portfolio.risk_limits.filter(metric="leverage").first() or portfolio.risk_limits.first()
    before = _state(), limit.threshold
    response = _post(staff, portfolio, "limit", limit=limit.pk, threshold="-1", enabled="on")
    assert "Refused" in " ".join(_messages(response))
    limit.refresh_from_db()
    assert (_state(), limit.threshold) == before
    _post(
        staff, portfolio, "limit", limit=limit.pk, threshold=str(limit.threshold * 2), enabled="on"
    )
    row = ConfigChange.objects.get(field="threshold", source="page")
    assert (row.before, row.after) == (before[1], before[1] * 2)


def test_rebalance_and_test_alert_controls(staff):
    from risk.models import AlertChannel

    portfolio = _configure()
    response = _post(staff, portfolio, "rebalance")
    assert "applies at the next bar" in " ".join(_messages(response))
    assert portfolio.rebalance_requests.filter(source="page", requested_by="quant").exists()
    channel = AlertChannel.objects.create(name="ops", kind="email", portfolio=portfolio)
    _post(staff, portfolio, "test-alert", channel=channel.pk)
    assert AlertDelivery.objects.filter(channel=channel, violation=None).count() == 1


def test_a_violation_is_acknowledged_with_a_note_on_the_page(staff):
    portfolio = _configure(risk=True)
    run_update(as_of=date(1990, 6, 29), load_prices=False)
    v = Violation.objects.filter(portfolio=portfolio).first()
    assert v is not None, "the demo limits breach by mid-1990"
    response = _post(staff, portfolio, "acknowledge", violation=v.pk, note="")
    assert "needs a note" in " ".join(_messages(response))
    _post(staff, portfolio, "acknowledge", violation=v.pk, note="looked at it")
    v.refresh_from_db()
    assert (v.acknowledged_by, v.acknowledged_note) == ("quant", "looked at it")
    assert v.acknowledged_at is not None


def test_the_rebalancing_rule_is_checked_by_the_yaml_rules_and_audited(staff):
    portfolio = _configure()
    before = _state(), Portfolio.objects.filter(pk=portfolio.pk).values().get()
    response = _post(staff, portfolio, "rebalancing", frequency="weekly", trading_day="9")
    text = " ".join(_messages(response))
    assert "Refused" in text and "portfolio.rebalancing.trading_day" in text
    assert (_state(), Portfolio.objects.filter(pk=portfolio.pk).values().get()) == before
    _post(staff, portfolio, "rebalancing", method="threshold", threshold="0.1")
    portfolio.refresh_from_db()
    assert (portfolio.rebalance_trigger, float(portfolio.rebalance_threshold)) == ("threshold", 0.1)
    fields = set(ConfigChange.objects.filter(source="page").values_list("field", flat=True))
    assert fields == {"rebalance_trigger", "rebalance_threshold"}


def test_an_alert_channel_threshold_is_edited_and_a_bad_one_refused(staff):
    from risk.models import AlertChannel

    portfolio = _configure()
    channel = AlertChannel.objects.create(
        name="ops", kind="email", portfolio=portfolio, config={"recipients": ["ops@example.com"]}
    )
    response = _post(staff, portfolio, "channel", channel=channel.pk, min_severity="huge")
    assert "min_severity" in " ".join(_messages(response))
    assert not ConfigChange.objects.filter(source="page").exists()
    _post(staff, portfolio, "channel", channel=channel.pk, min_severity="high", enabled="on")
    channel.refresh_from_db()
    assert channel.min_severity == "high"
    row = ConfigChange.objects.get(source="page")
    assert (row.field, row.before, row.after) == ("min_severity", "low", "high")


def test_a_strategy_added_on_the_page_joins_with_no_capital_until_funded(staff):
    portfolio = _configure()
    run_update(as_of=date(1990, 2, 28), load_prices=False)
    bad = _post(
        staff,
        portfolio,
        "add",
        name="mom_bad",
        signal_type="MomentumSignalV2",
        parameters='{"lookback": -5}',
        risk_config="{}",
    )
    assert "parameters.lookback" in " ".join(_messages(bad))
    assert not Strategy.objects.filter(name="mom_bad").exists()
    response = _post(
        staff,
        portfolio,
        "add",
        name="mom_new",
        signal_type="MomentumSignalV2",
        parameters='{"lookback": 20}',
        risk_config="{}",
    )
    assert "mom_new added" in " ".join(_messages(response))
    s = Strategy.objects.get(portfolio=portfolio, name="mom_new")
    assert (float(s.target_allocation), s.cash) == (0.0, 0.0)
    assert ConfigChange.objects.filter(object_repr="mom_new", source="page").count() >= 3
    run_update(as_of=date(1990, 3, 30), load_prices=False)
    assert not Trade.objects.filter(strategy=s).exists()  # no capital yet


def test_retiring_a_strategy_keeps_its_history_and_it_cannot_be_resumed(staff):
    portfolio = _configure()
    run_update(as_of=date(1990, 5, 31), load_prices=False)
    s = portfolio.strategies.get(name="mean_reversion_20")
    trades = Trade.objects.filter(strategy=s).count()
    assert trades and s.positions.exists()
    html = staff.get("/config/").content.decode()
    assert 'id="retire-mean_reversion_20"' in html
    form = html.split('id="retire-mean_reversion_20"')[0].rsplit("<form", 1)[1]
    import re

    data = dict(re.findall(r'name="(allocation_[^"]+)" value="([^"]+)"', form))
    response = _post(staff, portfolio, "retire", strategy=s.pk, **data)
    assert "mean_reversion_20 retired" in " ".join(_messages(response))
    s.refresh_from_db()
    assert (s.status, float(s.target_allocation)) == ("paused", 0.0) and s.retired_at
    assert Trade.objects.filter(strategy=s).count() == trades
    # the next bar winds the book down: positions closed, cash to the others; then nothing
    run_update(as_of=date(1990, 6, 1), load_prices=False)
    s.refresh_from_db()
    closing = Trade.objects.filter(strategy=s, date=date(1990, 6, 1))
    assert closing.exists() and set(closing.values_list("reason", flat=True)) == {"retire"}
    assert not s.positions.exists() and s.cash == 0.0
    event = portfolio.rebalances.get(date=date(1990, 6, 1), trigger="retire")
    assert event.capital_moved > 0 and event.weights_after["mean_reversion_20"] == 0.0
    run_update(as_of=date(1990, 6, 29), load_prices=False)
    assert Trade.objects.filter(strategy=s).count() == trades + closing.count()
    total = sum(float(x.target_allocation) for x in portfolio.strategies.all())
    assert total == pytest.approx(float(portfolio.leverage_target), abs=1e-6)
    _post(staff, portfolio, "resume", strategy=s.pk)
    s.refresh_from_db()
    assert s.status == "paused"


def _request_rows(portfolio):
    return list(
        ConfigChange.objects.filter(portfolio=portfolio, field="rebalance_request").values_list(
            "actor", "source", "client_ip", "object_type", "before", "after"
        )
    )


def test_a_rebalance_request_is_in_the_audit_trail_from_the_page_the_admin_and_the_api(staff):
    portfolio = _configure()
    _post(staff, portfolio, "rebalance")
    staff.post(
        "/admin/portfolio/portfolio/",
        {"action": "rebalance_next_bar", "_selected_action": [portfolio.pk]},
    )
    url = f"/api/portfolios/{portfolio.pk}/rebalance/"
    body = {"request_key": "api-click-1", "method": "proportional"}
    assert staff.post(url, body, content_type="application/json").status_code == 202
    assert staff.post(url, body, content_type="application/json").status_code == 200  # again
    keys = dict(portfolio.rebalance_requests.values_list("source", "request_key"))
    after = {"method": "portfolio's", "after_date": None}
    assert _request_rows(portfolio) == [  # newest first; the repeated key added none
        (
            "quant",
            "api",
            "127.0.0.1",
            "Portfolio",
            None,
            {"request_key": "api-click-1", "method": "proportional", "after_date": None},
        ),
        ("quant", "admin", "127.0.0.1", "Portfolio", None, {**after, "request_key": keys["admin"]}),
        ("quant", "page", "127.0.0.1", "Portfolio", None, {**after, "request_key": keys["page"]}),
    ]
    html = staff.get("/config/").content.decode()
    audit = html.split('id="audit"')[1].split("</table>")[0]
    assert audit.count("rebalance_request") == 3 and keys["page"] in audit


def test_a_refused_rebalance_request_leaves_no_audit_row(staff):
    portfolio = _configure()
    url = f"/api/portfolios/{portfolio.pk}/rebalance/"
    response = staff.post(url, {"request_key": "x" * 101}, content_type="application/json")
    assert response.status_code == 400
    assert _request_rows(portfolio) == [] and not portfolio.rebalance_requests.exists()
