"""The scenarios after an update: the scheduled task is queued when an update applied
bars, stores one result per enabled window and mode, shock and projection, once per state
version; and the correlation regime check alerts through the channels on a transition
only."""

from __future__ import annotations

import pytest
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from operations.tasks import SCENARIOS_TASK, run_scheduled_update
from operations.tests.scenario_setup import stressed_portfolio
from risk.models import AlertChannel, AlertDelivery, RiskLimit, ScenarioRun, StressWindow
from risk.services.projections import regime_record
from risk.services.scenario_requests import scenarios_scheduled
from risk.tasks import run_scenarios


@pytest.fixture
def live(db):
    return stressed_portfolio()


def _queued_funcs() -> list[str]:
    """Drain the broker (the ORM's, or Redis with ``REDIS_URL``): the queued functions."""
    broker = get_broker()
    funcs = []
    for _ in range(1000):
        tasks = broker.dequeue()
        if not tasks:
            break
        for ack_id, payload in tasks:
            funcs.append(SignedPackage.loads(payload)["func"])
            broker.acknowledge(ack_id)
    return funcs


def test_an_update_that_applied_bars_queues_the_scenarios(live, settings):
    settings.QUANTSITE_SCENARIOS_AFTER_UPDATE = True
    _queued_funcs()  # whatever an earlier test left
    run_scheduled_update()  # applies the bundled bars after 2022-09-30
    assert SCENARIOS_TASK in _queued_funcs()
    run_scheduled_update()  # nothing new to apply: nothing queued
    assert SCENARIOS_TASK not in _queued_funcs()


def test_the_scheduled_set_runs_once_per_state(live, settings):
    settings.QUANTSITE_SCENARIO_MODES = ["hold", "run"]
    StressWindow.objects.exclude(name__in=["COVID crash", "2011 US downgrade"]).update(
        enabled=False
    )
    assert run_scenarios().startswith("scenarios: stressed ")
    runs = ScenarioRun.objects.filter(portfolio=live, trigger="schedule")
    stress = sorted(runs.filter(kind="stress").values_list("name", "params__mode"))
    assert stress == [
        ("2011 US downgrade", "hold"),
        ("2011 US downgrade", "run"),
        ("COVID crash", "hold"),
        ("COVID crash", "run"),
    ]
    assert runs.filter(kind="shock").count() == 2  # the two seeded shocks
    assert runs.filter(kind="montecarlo", status="success").count() == 1
    assert runs.filter(kind="regime").count() == 1
    assert all(r.status == "success" for r in runs.filter(kind__in=["stress", "shock"]))
    n = runs.count()
    assert scenarios_scheduled(portfolio=live) == 0  # same state version: nothing again
    assert runs.count() == n


def test_the_regime_check_alerts_once_when_strategies_are_too_correlated(live):
    AlertChannel.objects.create(
        portfolio=live, name="desk", kind="email", config={"recipients": ["desk@example.com"]}
    )
    RiskLimit.objects.create(
        portfolio=live,
        name="correlation_alert",
        scope="portfolio",
        metric="strategy_correlation",
        direction="max",
        threshold=-0.99,
        severity="low",
        action="alert_only",
    )
    first = regime_record(portfolio=live, params={"window": 20}, trigger="command")
    assert first.status == "success", first.error
    assert first.result["threshold"] == -0.99 and first.result["above_threshold"]
    deliveries = AlertDelivery.objects.filter(violation__isnull=True)
    assert deliveries.count() == 1
    assert "Correlation regime" in deliveries.get().subject
    assert "above the threshold" in deliveries.get().body
    regime_record(portfolio=live, params={"window": 20}, trigger="command")
    assert deliveries.count() == 1  # still above: no second alert
