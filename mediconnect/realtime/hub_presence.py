"""Presence for a whole process: which users have a socket here, announced in batches, refreshed by one timer.

A mixin of mediconnect.realtime.hub.Hub: not one task per socket. The store is notifications.presence.
"""

import asyncio
import logging
from collections import Counter

from notifications import presence

logger = logging.getLogger(__name__)


class PresenceBatch:
    def _init_presence(self) -> None:
        self.users: Counter[int] = Counter()
        self._arrived: set[int] = set()
        self._left: set[int] = set()
        self._announce_lock = asyncio.Lock()
        self._announce: asyncio.Future | None = None

    async def arrive(self, user_id: int) -> None:
        """Count a socket of `user_id`; the first one here marks the user online (batched with others)."""
        self.users[user_id] += 1
        if self.users[user_id] == 1:
            self._left.discard(user_id)
            self._arrived.add(user_id)
            await self._announce_soon()

    def depart(self, user_id: int) -> None:
        """Uncount a socket of `user_id`; the last one here marks the user offline, in the background."""
        self.users[user_id] -= 1
        if self.users[user_id] <= 0:
            del self.users[user_id]
            self._arrived.discard(user_id)
            self._left.add(user_id)
            self._spawn(self._announce_soon())

    async def _announce_soon(self) -> None:
        # Everyone who arrives while a batch is waiting rides along in it.
        if self._announce is None:
            self._announce = asyncio.ensure_future(self._announce_batch())
        await asyncio.shield(self._announce)

    async def _announce_batch(self) -> None:
        async with self._announce_lock:  # batches reach the store in the order they were made
            self._announce = None
            arrived, left = self._arrived, self._left
            self._arrived, self._left = set(), set()
            try:
                await presence.backend().announce(self.node, online=arrived, offline=left)
            except Exception:  # the periodic refresh repairs it
                logger.warning("hub: presence update failed", exc_info=True)

    async def _refresh_presence_forever(self) -> None:
        while True:
            await asyncio.sleep(presence.HEARTBEAT_SECONDS)
            await self._refresh_presence()

    async def _refresh_presence(self) -> None:
        try:
            await presence.backend().announce(self.node, online=set(self.users), offline=())
            await presence.backend().refresh_sockets(dict(self.sockets))
        except Exception:
            logger.warning("hub: presence refresh failed", exc_info=True)
