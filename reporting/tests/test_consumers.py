"""The live websocket: authenticated users of a portfolio get its snapshot.update events.

The tests are sync functions driving async bodies with ``async_to_sync`` (no
pytest-asyncio here): database_sync_to_async then runs in the test's thread, inside its
transaction."""

from __future__ import annotations

from datetime import date

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from portfolio.models import Portfolio
from portfolio.notify import notify_update
from reporting.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_connection(monkeypatch):
    """database_sync_to_async closes "old" connections around each call, and on
    PostgreSQL a connection inside the test's transaction (autocommit off) counts as one:
    the test would lose its transaction. Production keeps the call; the tests skip it."""
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


@database_sync_to_async
def _portfolio() -> Portfolio:
    return Portfolio.objects.create(name="live", initial_capital=1000)


def _communicator(portfolio_id: int, user) -> WebsocketCommunicator:
    app = URLRouter(websocket_urlpatterns)
    communicator = WebsocketCommunicator(app, f"/ws/portfolio/{portfolio_id}/")
    communicator.scope["user"] = user
    return communicator


def test_an_authenticated_user_receives_the_update_paths_events(user):
    async_to_sync(_an_authenticated_user_receives_the_update_paths_events)(user)


async def _an_authenticated_user_receives_the_update_paths_events(user):
    portfolio = await _portfolio()
    communicator = _communicator(portfolio.id, user)
    connected, _ = await communicator.connect()
    assert connected
    # the update path's push, as run_update calls it after a commit
    await sync_to_async(notify_update)(portfolio.id, date(2022, 12, 28))
    message = await communicator.receive_json_from(timeout=2)
    assert message == {"type": "snapshot.update", "portfolio": portfolio.id, "date": "2022-12-28"}
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
        {"type": "snapshot.update", "portfolio": portfolio.id + 1, "date": "2022-12-28"},
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


def test_anonymous_users_are_refused():
    async_to_sync(_anonymous_users_are_refused)()


async def _anonymous_users_are_refused():
    portfolio = await _portfolio()
    communicator = _communicator(portfolio.id, AnonymousUser())
    connected, code = await communicator.connect()
    assert not connected and code == 4401


def test_an_unknown_portfolio_is_refused(user):
    async_to_sync(_an_unknown_portfolio_is_refused)(user)


async def _an_unknown_portfolio_is_refused(user):
    communicator = _communicator(999999, user)
    connected, code = await communicator.connect()
    assert not connected and code == 4404
