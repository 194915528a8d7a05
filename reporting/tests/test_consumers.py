"""The live websocket: each committed state version reaches every open page once.

The tests are sync functions driving async bodies with ``async_to_sync`` (no
pytest-asyncio here): database_sync_to_async then runs in the test's thread, inside its
transaction, so the per-process watcher (``reporting.live``) reads what the test's
savepoints committed, and never what they rolled back. on_commit callbacks (the channel
layer's path, ``portfolio.notify``) run when ``django_capture_on_commit_callbacks``
says the outer commit happened."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from operations import update as update_service
from operations.config import portfolio_configure
from operations.update import run_update
from portfolio.models import Portfolio, StateVersion
from portfolio.services.config import allocation_spec_read
from portfolio.services.live import state_version_bump
from reporting import live
from reporting.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db
DEMO = Path(__file__).resolve().parents[2] / "config" / "strategy_allocation.yaml"
D0, D1 = date(1990, 3, 30), date(1990, 4, 2)  # a Friday and the next bar
QUIET_S = 3 * live.POLL_S  # long enough for the watcher to have sent a duplicate


@pytest.fixture(autouse=True)
def keep_the_test_connection(monkeypatch):
    """database_sync_to_async closes "old" connections around each call, and on
    PostgreSQL a connection inside the test's transaction (autocommit off) counts as one:
    the test would lose its transaction. Production keeps the call; the tests skip it."""
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


@pytest.fixture
def demo():
    """The demo portfolio with its history up to D0 applied (one state version per
    commit of its chunks)."""
    portfolio = portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    run_update(as_of=D0, load_prices=False)
    return portfolio


@database_sync_to_async
def _portfolio() -> Portfolio:
    return Portfolio.objects.create(name="live", initial_capital=1000)


def _communicator(portfolio_id: int, user, query: str = "") -> WebsocketCommunicator:
    app = URLRouter(websocket_urlpatterns)
    communicator = WebsocketCommunicator(app, f"/ws/portfolio/{portfolio_id}/{query}")
    communicator.scope["user"] = user
    return communicator


def _update_capturing(capture, seen: list | None = None):
    """run_update to D1 in the test's thread (its connection holds the test transaction),
    then the on_commit callbacks, as the outer commit would run them: the layer's push."""
    seen = [] if seen is None else seen
    callbacks = []
    try:
        with capture(execute=True) as callbacks:
            result = run_update(as_of=D1, load_prices=False)
    finally:
        seen.extend(callbacks)  # filled when the block exits
    return result, seen


def _version(portfolio_id: int) -> int:
    return StateVersion.objects.get(portfolio_id=portfolio_id).version


@pytest.mark.slow  # the demo's first quarter (a few seconds)
def test_a_committed_update_reaches_every_connected_client_once(
    user, demo, django_capture_on_commit_callbacks
):
    async_to_sync(_a_committed_update_reaches_every_client_once)(
        user, demo.id, _version(demo.id), django_capture_on_commit_callbacks
    )


async def _a_committed_update_reaches_every_client_once(user, portfolio_id, v0, capture):
    clients = [_communicator(portfolio_id, user) for _ in range(2)]
    for c in clients:
        assert (await c.connect())[0]
    for c in clients:  # connected without ?since: current, so nothing to catch up on
        assert await c.receive_nothing(timeout=QUIET_S)
    result, callbacks = await sync_to_async(_update_capturing)(capture)
    assert result.status == "success" and callbacks
    expected = {"type": "snapshot.update", "portfolio": portfolio_id, "version": v0 + 1}
    for c in clients:
        message = await c.receive_json_from(timeout=2)
        assert message == {**expected, "date": "1990-04-02"}
    for c in clients:  # both paths (watcher and layer) saw the version: sent once
        assert await c.receive_nothing(timeout=QUIET_S)
        await c.disconnect()


@pytest.mark.slow  # the demo's first quarter (a few seconds)
def test_a_rolled_back_update_reaches_no_client(
    user, demo, monkeypatch, django_capture_on_commit_callbacks
):
    def bump_then_die(**kwargs):
        state_version_bump(**kwargs)
        raise RuntimeError("the commit fails after the bump")

    v0 = _version(demo.id)
    monkeypatch.setattr(update_service, "state_version_bump", bump_then_die)
    async_to_sync(_a_rolled_back_update_reaches_no_client)(
        user, demo.id, django_capture_on_commit_callbacks
    )
    assert _version(demo.id) == v0


async def _a_rolled_back_update_reaches_no_client(user, portfolio_id, capture):
    clients = [_communicator(portfolio_id, user) for _ in range(2)]
    for c in clients:
        assert (await c.connect())[0]
    with pytest.raises(RuntimeError):
        await sync_to_async(_update_capturing)(capture, callbacks := [])
    assert callbacks == []  # nothing for the layer to send
    for c in clients:  # and the watcher never sees the rolled-back version
        assert await c.receive_nothing(timeout=QUIET_S)
        await c.disconnect()


@pytest.mark.slow  # the demo's first quarter (a few seconds)
def test_a_client_that_missed_versions_gets_the_current_one(user, demo):
    run_update(as_of=D1, load_prices=False)
    async_to_sync(_a_client_that_missed_versions_gets_the_current_one)(
        user, demo.id, _version(demo.id)
    )


async def _a_client_that_missed_versions_gets_the_current_one(user, portfolio_id, v):
    current = {"type": "snapshot.update", "portfolio": portfolio_id, "version": v}
    behind = _communicator(portfolio_id, user, f"?since={v - 2}")
    assert (await behind.connect())[0]
    assert await behind.receive_json_from(timeout=2) == {**current, "date": "1990-04-02"}
    assert await behind.receive_nothing(timeout=QUIET_S)
    # an open socket says it is one behind (a hello after a failed fetch): it gets v again
    await behind.send_json_to({"type": "hello", "since": v - 1})
    assert await behind.receive_json_from(timeout=2) == {**current, "date": "1990-04-02"}
    # a client at the current version gets nothing
    await behind.send_json_to({"type": "hello", "since": v})
    assert await behind.receive_nothing(timeout=QUIET_S)
    await behind.disconnect()


def test_a_ping_gets_a_pong(user):
    async_to_sync(_a_ping_gets_a_pong)(user)


async def _a_ping_gets_a_pong(user):
    portfolio = await _portfolio()
    communicator = _communicator(portfolio.id, user)
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=2) == {"type": "pong"}
    await communicator.disconnect()


def test_events_of_another_portfolio_are_not_forwarded(user):
    async_to_sync(_events_of_another_portfolio_are_not_forwarded)(user)


async def _events_of_another_portfolio_are_not_forwarded(user):
    portfolio = await _portfolio()
    communicator = _communicator(portfolio.id, user)
    assert (await communicator.connect())[0]
    await get_channel_layer().group_send(
        f"portfolio.{portfolio.id + 1}",
        {"type": "snapshot.update", "portfolio": portfolio.id + 1, "version": 9, "date": "x"},
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


def _through_the_asgi_app(portfolio_id: int, origin: bytes, cookie: str = ""):
    from quantsite.asgi import application

    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, f"/ws/portfolio/{portfolio_id}/", headers)


def test_anonymous_connections_are_refused_through_the_asgi_app():
    async_to_sync(_anonymous_connections_are_refused)()


async def _anonymous_connections_are_refused():
    portfolio = await _portfolio()
    communicator = _through_the_asgi_app(portfolio.id, b"http://127.0.0.1")
    connected, code = await communicator.connect()
    assert not connected and code == 4401
    direct = _communicator(portfolio.id, AnonymousUser())
    connected, code = await direct.connect()
    assert not connected and code == 4401


def test_a_foreign_origin_is_refused_even_when_logged_in(client, user):
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    async_to_sync(_foreign_origin_is_refused)(cookie)


async def _foreign_origin_is_refused(cookie):
    portfolio = await _portfolio()
    same_site = _through_the_asgi_app(portfolio.id, b"http://127.0.0.1", cookie)
    assert (await same_site.connect())[0]  # the cookie is good from the site's own origin
    await same_site.disconnect()
    foreign = _through_the_asgi_app(portfolio.id, b"http://evil.example", cookie)
    connected, _ = await foreign.connect()
    assert not connected


def test_an_unknown_portfolio_is_refused(user):
    async_to_sync(_an_unknown_portfolio_is_refused)(user)


async def _an_unknown_portfolio_is_refused(user):
    communicator = _communicator(999999, user)
    connected, code = await communicator.connect()
    assert not connected and code == 4404
