"""Cross-process live push without an extra service: one watcher per event loop (one per
daphne process) reads the committed state versions of the portfolios its open websockets
follow every ``POLL_S`` seconds and hands each new one to those consumers.

Why a watcher and not only the channel layer: in the embedded default the layer is
in-memory, so the scheduler's process (qcluster) cannot reach daphne's; the database is
the one thing both share, and ``StateVersion`` becomes visible exactly when its commit
does (never for a rolled-back one). With ``REDIS_URL`` the update path's group_send
(``portfolio.notify``) usually gets there first; each consumer sends a version only when
it is newer than the last it sent, so a version reaches a client at most once whichever
path brings it. The cost is one indexed query per process every ``POLL_S`` while at least
one page is open, none when no page is.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

from channels.db import database_sync_to_async

from portfolio.models import StateVersion

log = logging.getLogger(__name__)
POLL_S = 0.1  # a new version reaches an open page within ~0.1 s (bench/push.py)


class Follower(Protocol):
    async def version_seen(self, version: int, as_of) -> None: ...


@database_sync_to_async
def versions_read(portfolio_ids: list[int]) -> list[tuple[int, int, object]]:
    """``(portfolio id, version, as_of)`` of each portfolio with a committed version."""
    return list(
        StateVersion.objects.filter(portfolio_id__in=portfolio_ids).values_list(
            "portfolio_id", "version", "as_of"
        )
    )


class VersionWatcher:
    """The followers of each portfolio in this event loop, and the task polling for them
    (it runs while anyone follows and stops when the last one leaves)."""

    def __init__(self) -> None:
        self.followers: dict[int, set[Follower]] = {}
        self.task: asyncio.Task | None = None

    def follow(self, portfolio_id: int, follower: Follower) -> None:
        self.followers.setdefault(portfolio_id, set()).add(follower)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def leave(self, portfolio_id: int, follower: Follower) -> None:
        followers = self.followers.get(portfolio_id)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self.followers[portfolio_id]

    async def poll_once(self) -> None:
        rows = await versions_read(list(self.followers))
        for portfolio_id, version, as_of in rows:
            for follower in list(self.followers.get(portfolio_id, ())):
                try:
                    await follower.version_seen(version, as_of)
                except Exception:  # one broken socket must not stop the others' push
                    log.warning("live push to a follower failed", exc_info=True)

    async def _run(self) -> None:
        while self.followers:
            try:
                await self.poll_once()
            except Exception:  # a database hiccup: try again at the next tick
                log.warning("reading the live state versions failed", exc_info=True)
            await asyncio.sleep(POLL_S)


_watchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def watcher() -> VersionWatcher:
    """This event loop's watcher (daphne runs one loop per process)."""
    loop = asyncio.get_running_loop()
    if loop not in _watchers:
        _watchers[loop] = VersionWatcher()
    return _watchers[loop]
