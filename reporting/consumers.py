"""Live dashboard push: a websocket per page, fed by the update path's group events.

``ws/portfolio/<id>/``: an authenticated user joins group ``portfolio.<id>`` and receives
each ``snapshot.update`` event (sent by portfolio.notify after a bar commits) as JSON
``{"type": "snapshot.update", "portfolio": id, "date": "YYYY-MM-DD"}``. Anonymous
connections are closed with code 4401; an unknown portfolio with 4404.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from portfolio.models import Portfolio

UNAUTHENTICATED = 4401
NOT_FOUND = 4404


@database_sync_to_async
def _portfolio_exists(portfolio_id: int) -> bool:
    return Portfolio.objects.filter(pk=portfolio_id).exists()


class PortfolioConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.portfolio_id = int(self.scope["url_route"]["kwargs"]["portfolio_id"])
        if not await _portfolio_exists(self.portfolio_id):
            await self.close(code=NOT_FOUND)
            return
        self.group = f"portfolio.{self.portfolio_id}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Clients only listen; a ping gets a pong so they can check the line."""
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def snapshot_update(self, event):
        """Handler of group event ``snapshot.update``: forward it as it came."""
        await self.send_json(
            {"type": "snapshot.update", "portfolio": event["portfolio"], "date": event["date"]}
        )
