"""Tell the live pages that a portfolio moved. Called after commit; never fatal.

Group ``portfolio.<id>``, event ``snapshot.update`` (STYLE.md channel names).
"""

from __future__ import annotations

import logging
from datetime import date

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def notify_update(portfolio_id: int, as_of: date) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            f"portfolio.{portfolio_id}",
            {"type": "snapshot.update", "portfolio": portfolio_id, "date": as_of.isoformat()},
        )
    except Exception:  # a push that fails must not fail the update that already committed
        log.warning("live push for portfolio %s failed", portfolio_id, exc_info=True)
