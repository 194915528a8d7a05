"""Live dashboard push: a websocket per page.

``ws/portfolio/<id>/?since=<version>``: an authenticated user follows portfolio ``<id>``
and receives each newer committed state version once, as JSON ``{"type":
"snapshot.update", "portfolio": id, "version": N, "date": "YYYY-MM-DD"}``; the page then
fetches its JSON (``?format=json``) and applies it. ``since`` is the version the page was
rendered at: if the portfolio is already past it, the current version is sent at once, so
a client that missed versions (or reconnects) catches up. A ``{"type": "hello", "since":
N}`` message does the same on an open socket.

Two paths bring versions (``reporting.live``: the per-process watcher of the committed
versions, always; and the channel layer's group ``portfolio.<id>``, fed by
``portfolio.notify`` after commit, which crosses processes with Redis). A version is sent
only when it is newer than the last one this connection sent: never twice.

Anonymous connections are closed with code 4401; an unknown portfolio with 4404.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from portfolio.models import Portfolio, StateVersion
from reporting.live import watcher

UNAUTHENTICATED = 4401
NOT_FOUND = 4404


@database_sync_to_async
def _portfolio_exists(portfolio_id: int) -> bool:
    return Portfolio.objects.filter(pk=portfolio_id).exists()


@database_sync_to_async
def _current(portfolio_id: int):
    row = (
        StateVersion.objects.filter(portfolio_id=portfolio_id)
        .values_list("version", "as_of")
        .first()
    )
    return row or (0, None)


def _since(raw) -> int | None:
    try:
        return max(int(raw), 0)
    except (TypeError, ValueError):
        return None


class PortfolioConsumer(AsyncJsonWebsocketConsumer):
    portfolio_id: int | None = None
    sent = 0  # the newest version this connection sent (or the client said it has)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        portfolio_id = int(self.scope["url_route"]["kwargs"]["portfolio_id"])
        if not await _portfolio_exists(portfolio_id):
            await self.close(code=NOT_FOUND)
            return
        self.portfolio_id = portfolio_id
        self.group = f"portfolio.{portfolio_id}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        since = _since(query.get("since", [None])[0])
        await self._catch_up(since)
        watcher().follow(portfolio_id, self)

    async def disconnect(self, code):
        if self.portfolio_id is not None:
            watcher().leave(self.portfolio_id, self)
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _catch_up(self, since: int | None) -> None:
        """Without ``since`` the client is taken to be current; with it, it gets the
        current version if that is newer."""
        version, as_of = await _current(self.portfolio_id)
        self.sent = version if since is None else since
        await self.version_seen(version, as_of)

    async def receive_json(self, content, **kwargs):
        """A ping gets a pong so clients can check the line; a hello says which version
        the client has, and gets the current one if it is newer."""
        kind = content.get("type")
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "hello":
            await self._catch_up(_since(content.get("since")) or 0)

    async def version_seen(self, version: int, as_of) -> None:
        """Send ``version`` unless this connection already sent it or a newer one."""
        if version <= self.sent:
            return
        self.sent = version
        date = as_of if isinstance(as_of, str) or as_of is None else as_of.isoformat()
        await self.send_json(
            {
                "type": "snapshot.update",
                "portfolio": self.portfolio_id,
                "version": version,
                "date": date,
            }
        )

    async def snapshot_update(self, event):
        """Handler of group event ``snapshot.update`` (the channel layer's path)."""
        await self.version_seen(int(event.get("version") or 0), event.get("date"))
