"""Operator changes move the live state version at once (``state_touch``): one version per
change whatever the number of fields, the bar date kept, pushed only after commit, never
for a refused change; and a pause on the configuration page reaches an open page.

The consumer test follows test_consumers.py: sync tests driving async bodies, the page's
POST run in the test's thread (inside its transaction) with the on_commit callbacks
executed as the outer commit would."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connection

from operations.config import portfolio_configure
from operations.digest import portfolio_tables
from portfolio.engine.errors import ConfigError
from portfolio.models import ConfigChange, Portfolio, StateVersion, Strategy
from portfolio.services.config import allocation_spec_read
from portfolio.services.controls import Origin, strategy_allocations_set, strategy_update
from portfolio.services.live import state_touch, state_version_bump
from portfolio.services.rebalance import rebalance_request
from reporting import live
from reporting.routing import websocket_urlpatterns
from risk.services import strategy_resume

pytestmark = pytest.mark.django_db
DEMO = Path(__file__).resolve().parents[2] / "config" / "strategy_allocation.yaml"
D0 = date(1990, 3, 30)
QUIET_S = 3 * live.POLL_S
ALICE = Origin(actor="alice", source="page", ip="10.0.0.7")
# a pause POST: session, user, portfolio, the strategy (view and refresh), savepoint,
# portfolio lock, strategy.portfolio, the touch (bump + read-back), audit row, update,
# release: none of them per strategy
PAUSE_QUERIES = 13


@pytest.fixture(autouse=True)
def keep_the_test_connection(monkeypatch):
    """As in test_consumers.py: the test's transaction must survive database_sync_to_async."""
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


@pytest.fixture
def staff(logged_in, user):
    user.is_staff = True
    user.save()
    return logged_in


@pytest.fixture
def portfolio() -> Portfolio:
    """The demo portfolio as if its bars up to D0 were committed (version 1 as of D0)."""
    p = portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    Portfolio.objects.filter(pk=p.pk).update(last_applied_date=D0)
    p.refresh_from_db()
    state_version_bump(portfolio=p, as_of=D0)
    return p


def _version(p: Portfolio) -> tuple[int, date | None]:
    return StateVersion.objects.values_list("version", "as_of").get(portfolio=p)


def _commit(capture, change):
    """Run ``change`` as if it were committed on its own: its after-commit callbacks run
    and leave the list, as a real commit empties it (the test's outer transaction would
    otherwise keep them pending, and a later change would count as the same one)."""
    with capture(execute=True) as callbacks:
        change()
    connection.run_on_commit = [e for e in connection.run_on_commit if e[1] not in callbacks]
    return callbacks


def _pushes(callbacks) -> list[tuple[int, date | None]]:
    return [(c.version, c.as_of) for c in callbacks if hasattr(c, "version")]


def test_an_edit_of_every_allocation_is_one_version_with_the_bar_date_kept(
    portfolio, django_capture_on_commit_callbacks
):
    names = list(portfolio.strategies.order_by("name").values_list("name", flat=True))
    new = dict.fromkeys(names, 0.0) | {names[0]: 0.6, names[1]: 0.4}
    with django_capture_on_commit_callbacks() as callbacks:
        changed = strategy_allocations_set(portfolio=portfolio, allocations=new, origin=ALICE)
    assert len(changed) == len(names)  # five objects, five audit rows ...
    assert ConfigChange.objects.filter(source="page").count() == len(names)
    assert _version(portfolio) == (2, D0)  # ... one version, the same bar
    assert _pushes(callbacks) == [(2, D0)]  # one push, after commit


def test_a_refused_change_moves_no_version_and_pushes_nothing(
    portfolio, django_capture_on_commit_callbacks
):
    s = portfolio.strategies.get(name="momentum_60")
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ConfigError):
        strategy_update(strategy=s, values={"target_allocation": 0.95}, origin=ALICE)
    assert _version(portfolio) == (1, D0) and callbacks == []


def test_a_change_that_changes_nothing_moves_no_version(portfolio):
    s = portfolio.strategies.get(name="momentum_60")
    assert strategy_update(strategy=s, values={"status": s.status}, origin=ALICE) == []
    assert _version(portfolio) == (1, D0)


def test_each_operator_change_is_its_own_version(portfolio, django_capture_on_commit_callbacks):
    s = portfolio.strategies.get(name="momentum_60")
    pushes = _commit(
        django_capture_on_commit_callbacks,
        lambda: strategy_update(strategy=s, values={"status": "paused"}, origin=ALICE),
    )
    pushes += _commit(
        django_capture_on_commit_callbacks,
        lambda: strategy_resume(strategy=s, actor="bob", source="admin", ip="10.0.0.8"),
    )
    assert _pushes(pushes) == [(2, D0), (3, D0)]
    row = ConfigChange.objects.get(actor="bob")
    assert (row.field, row.before, row.after, row.client_ip) == (
        "status",
        "paused",
        "active",
        "10.0.0.8",
    )


def test_a_touch_rolled_back_with_its_savepoint_does_not_hide_the_next_change(portfolio):
    from django.db import transaction

    with transaction.atomic():
        try:
            with transaction.atomic():
                state_touch(portfolio)
                raise RuntimeError("the change fails")
        except RuntimeError:
            pass
        assert _version(portfolio) == (1, D0)
        assert state_touch(portfolio) == 2  # counted again: the first one is gone
        assert state_touch(portfolio) is None  # once per transaction
    assert _version(portfolio) == (2, D0)


def test_a_first_touch_takes_the_last_applied_bar(django_capture_on_commit_callbacks):
    p = Portfolio.objects.create(name="fresh", initial_capital=1000, last_applied_date=D0)
    with django_capture_on_commit_callbacks() as callbacks:
        assert state_touch(p) == 1
    assert _version(p) == (1, D0) and _pushes(callbacks) == [(1, D0)]


def test_operator_changes_leave_the_live_equals_replay_digest_alone(portfolio):
    before = portfolio_tables(portfolio)
    rebalance_request(portfolio=portfolio, origin=ALICE)
    state_touch(portfolio)
    assert portfolio_tables(portfolio) == before


def test_a_pause_on_the_config_page_reaches_a_connected_client(
    staff, user, portfolio, django_capture_on_commit_callbacks
):
    s = portfolio.strategies.get(name="momentum_60")
    async_to_sync(_a_pause_reaches_a_client)(
        user, portfolio.id, s.pk, staff, django_capture_on_commit_callbacks
    )
    s.refresh_from_db()
    assert s.status == Strategy.Status.PAUSED
    assert _version(portfolio) == (2, D0)


async def _a_pause_reaches_a_client(user, portfolio_id, strategy_id, client, capture):
    app = URLRouter(websocket_urlpatterns)
    socket = WebsocketCommunicator(app, f"/ws/portfolio/{portfolio_id}/?since=1")
    socket.scope["user"] = user
    assert (await socket.connect())[0]
    assert await socket.receive_nothing(timeout=QUIET_S)  # current at version 1

    def pause():
        with capture(execute=True):
            return client.post(f"/config/{portfolio_id}/pause/", {"strategy": strategy_id})

    assert (await sync_to_async(pause)()).status_code == 302
    message = await socket.receive_json_from(timeout=2)
    assert message == {
        "type": "snapshot.update",
        "portfolio": portfolio_id,
        "version": 2,
        "date": "1990-03-30",
    }
    assert await socket.receive_nothing(timeout=QUIET_S)  # the layer and the watcher: once
    await socket.disconnect()


def test_the_config_pages_json_carries_its_tables_and_audit_trail_not_its_forms(staff, portfolio):
    s = portfolio.strategies.get(name="momentum_60")
    staff.post(f"/config/{portfolio.pk}/pause/", {"strategy": s.pk})
    page = staff.get("/config/?format=json").json()
    fragments = page["fragments"]
    assert (page["version"], page["as_of"]) == (2, "1990-03-30")
    assert {"config-allocations", "config-audit", "config-limits", "config-requests"} <= set(
        fragments
    )
    assert "paused" in fragments["config-allocations"]
    assert (
        "quant" in fragments["config-audit"] and "&quot;paused&quot;" in (fragments["config-audit"])
    )
    assert not any("<form" in html for html in fragments.values())  # the controls stay put


def _pause_queries(client, portfolio, name: str) -> int:
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    s = portfolio.strategies.get(name=name)
    with CaptureQueriesContext(conn) as queries:
        assert client.post(f"/config/{portfolio.pk}/pause/", {"strategy": s.pk}).status_code == 302
    return len(queries)


def test_a_pause_costs_the_same_queries_for_a_small_and_a_large_portfolio(
    staff, portfolio, django_capture_on_commit_callbacks
):
    from portfolio.services.controls import strategy_add

    def pause(name):
        counted = []
        _commit(
            django_capture_on_commit_callbacks,
            lambda: counted.append(_pause_queries(staff, portfolio, name)),
        )
        return counted[0]

    small = pause("momentum_60")
    assert small == PAUSE_QUERIES
    for i in range(6):
        _commit(
            django_capture_on_commit_callbacks,
            lambda i=i: strategy_add(
                portfolio=portfolio,
                name=f"extra_{i}",
                signal_type="MomentumSignalV2",
                parameters={"lookback": 20 + i},
                risk_config={},
                origin=ALICE,
            ),
        )
    assert pause("mean_reversion_20") == small
