"""The REST commands: staff only, the same services and audit rows as the page (source
``api``), the resulting state in the answer, a refused value changes nothing, and an
``Idempotency-Key`` replays the first answer instead of acting twice; an unknown path or
id under /api/ is a JSON 404."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import ConfigChange, Strategy
from portfolio.services.config import allocation_spec_read
from risk.models import RiskLimit, Violation
from risk.services import risk_spec_read

CONFIG = Path(__file__).resolve().parents[2] / "config"
pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio(db):
    return portfolio_configure(
        spec=allocation_spec_read(CONFIG / "strategy_allocation.yaml"),
        risk=risk_spec_read(CONFIG / "risk_limits.yaml"),
        source="demo",
    )


@pytest.fixture
def staff(logged_in, user):
    user.is_staff = True
    user.save()
    return logged_in


def _post(client, url, body=None, **headers):
    return client.post(url, body or {}, content_type="application/json", headers=headers)


def _strategy(portfolio, name="momentum_60") -> Strategy:
    return portfolio.strategies.get(name=name)


def test_commands_are_refused_to_anonymous_and_plain_users(client, logged_in, portfolio):
    s = _strategy(portfolio)
    limit = portfolio.risk_limits.first()
    urls = [
        f"/api/strategies/{s.pk}/pause/",
        f"/api/strategies/{s.pk}/resume/",
        f"/api/portfolios/{portfolio.pk}/allocations/",
        f"/api/limits/{limit.pk}/",
    ]
    for url in urls:
        assert _post(client, url).status_code in (401, 403), url
        assert _post(logged_in, url).status_code == 403, url
    s.refresh_from_db()
    assert s.status == "active" and not ConfigChange.objects.filter(source="api").exists()


def test_pause_and_resume_answer_the_strategy_and_are_audited(staff, portfolio):
    s = _strategy(portfolio)
    done = _post(staff, f"/api/strategies/{s.pk}/pause/")
    assert done.status_code == 200
    assert done.json()["changed"] is True and done.json()["strategy"]["status"] == "paused"
    again = _post(staff, f"/api/strategies/{s.pk}/pause/")
    assert again.json()["changed"] is False
    row = ConfigChange.objects.get(object_repr="momentum_60", field="status")
    assert (row.before, row.after, row.actor, row.source) == ("active", "paused", "quant", "api")
    back = _post(staff, f"/api/strategies/{s.pk}/resume/")
    assert back.json()["changed"] is True and back.json()["strategy"]["status"] == "active"


def test_a_pause_with_an_idempotency_key_acts_once_and_replays(staff, portfolio):
    s = _strategy(portfolio)
    url = f"/api/strategies/{s.pk}/pause/"
    first = _post(staff, url, **{"Idempotency-Key": "pause-1"})
    assert first.status_code == 200 and first["Idempotent-Replayed"] == "false"
    # resumed meanwhile (say from the page): the replay must not pause it again
    _post(staff, f"/api/strategies/{s.pk}/resume/")
    replay = _post(staff, url, **{"Idempotency-Key": "pause-1"})
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    s.refresh_from_db()
    assert s.status == "active"
    other = _post(
        staff, f"/api/strategies/{s.pk}/resume/", {"x": 1}, **{"Idempotency-Key": "pause-1"}
    )
    assert other.status_code == 422


def test_allocations_are_set_as_one_set_and_a_bad_sum_changes_nothing(staff, portfolio):
    url = f"/api/portfolios/{portfolio.pk}/allocations/"
    before = list(Strategy.objects.order_by("pk").values_list("target_allocation", flat=True))
    bad = _post(staff, url, {"allocations": {"momentum_60": 0.95}})
    assert bad.status_code == 400
    assert list(bad.json()) == ["allocations"] and "sum" in bad.json()["allocations"][0]
    assert (
        list(Strategy.objects.order_by("pk").values_list("target_allocation", flat=True)) == before
    )
    unknown = _post(staff, url, {"allocations": {"nope": 0.2}})
    assert unknown.status_code == 400 and list(unknown.json()) == ["allocations.nope"]
    ok = _post(staff, url, {"allocations": {"momentum_60": 0.25, "momentum_120": 0.20}})
    assert ok.status_code == 200 and sorted(ok.json()["changed"]) == ["momentum_120", "momentum_60"]
    assert {r["name"]: float(r["target_allocation"]) for r in ok.json()["strategies"]}[
        "momentum_60"
    ] == 0.25
    assert ConfigChange.objects.filter(source="api", field="target_allocation").count() == 2
    assert _post(staff, url, {"allocations": "half"}).status_code == 400


def test_a_limit_edit_is_checked_by_the_yaml_rules(staff, portfolio):
    limit = portfolio.risk_limits.get(name="max_leverage")
    url = f"/api/limits/{limit.pk}/"
    assert _post(staff, url, {}).status_code == 400
    bad = _post(staff, url, {"threshold": -1})
    assert bad.status_code == 400 and list(bad.json())[0].startswith("limit max_leverage.")
    limit.refresh_from_db()
    old = limit.threshold
    assert old != -1
    ok = _post(staff, url, {"threshold": old + 0.5, "enabled": False})
    assert ok.status_code == 200 and sorted(ok.json()["changed"]) == ["enabled", "threshold"]
    assert ok.json()["limit"]["threshold"] == old + 0.5 and ok.json()["limit"]["enabled"] is False


def test_a_form_post_of_only_a_threshold_leaves_the_limit_enabled(staff, portfolio):
    # DRF reads a checkbox missing from a form post as False: a threshold edit sent as a
    # form turned the limit off
    limit = portfolio.risk_limits.get(name="max_leverage")
    assert limit.enabled
    ok = staff.post(f"/api/limits/{limit.pk}/", {"threshold": limit.threshold + 0.5})
    assert ok.status_code == 200 and ok.json()["changed"] == ["threshold"]
    limit.refresh_from_db()
    assert limit.enabled


def test_a_violation_is_acknowledged_with_a_note(staff, portfolio):
    run_update(as_of=date(1990, 8, 31))
    v = Violation.objects.filter(portfolio=portfolio).first()
    assert v is not None
    url = f"/api/violations/{v.pk}/acknowledge/"
    assert _post(staff, url, {"note": ""}).status_code == 400
    ok = _post(staff, url, {"note": "seen, expected after the crash"})
    assert ok.status_code == 200 and ok.json()["changed"] is True
    assert ok.json()["violation"]["acknowledged_by"] == "quant"
    assert _post(staff, url, {"note": "again"}).json()["changed"] is False
    v.refresh_from_db()
    assert v.acknowledged_note == "seen, expected after the crash"
    assert RiskLimit.objects.filter(pk=v.limit_id).exists()


def test_an_unknown_path_or_a_refused_id_under_api_is_a_json_404(staff):
    for url in ("/api/limits/-5/", "/api/nothing-here/", "/api/strategies/abc/pause/"):
        response = staff.get(url)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}, url
    assert "text/html" in staff.get("/no-such-page/")["Content-Type"]
