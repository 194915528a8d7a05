"""Tell the live pages that a portfolio moved. Called after commit; never fatal.

Group ``portfolio.<id>``, event ``snapshot.update`` (STYLE.md channel names), carrying the
committed state version: ``{"type": "snapshot.update", "portfolio": id, "version": N,
"date": "YYYY-MM-DD"}`` (``date`` the last applied bar, null before the first; an operator
change sends the same date again with a newer version).

This is the fast path, useful when the channel layer crosses processes (channels-redis
with ``REDIS_URL``). The guaranteed path is the watcher in each daphne process
(``reporting.live``), which reads the committed versions; consumers drop any version they
have already sent, so the two never deliver one version twice.
"""

from __future__ import annotations

import logging
from datetime import date

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def notify_update(portfolio_id: int, as_of: date | None, version: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            f"portfolio.{portfolio_id}",
            {
                "type": "snapshot.update",
                "portfolio": portfolio_id,
                "version": version,
                "date": as_of.isoformat() if as_of is not None else None,
            },
        )
    except Exception:  # a push that fails must not fail the update that already committed
        log.warning("live push for portfolio %s failed", portfolio_id, exc_info=True)
