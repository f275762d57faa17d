"""Sockets per user, counted across processes: one over WS_MAX_SOCKETS_PER_USER closes the user's oldest (4429).

A mixin of mediconnect.realtime.hub.Hub; the heartbeat (hub_presence) refreshes the count.
"""

import asyncio
import logging

from django.conf import settings

from core import outbox
from core.wire import CLOSE_TOO_MANY_SOCKETS
from notifications import presence

logger = logging.getLogger(__name__)


class SocketRegistry:
    def _init_registry(self) -> None:
        self.sockets: dict[str, int] = {}  # registered socket name → user id
        self._registering: dict[str, asyncio.Task] = {}
        self._socket_count = 0

    def register_socket(self, user_id: int) -> str:
        """Count a new socket of `user_id` and return its name; the user's oldest sockets beyond
        WS_MAX_SOCKETS_PER_USER are closed with 4429, in the background (the new one is served)."""
        self._socket_count += 1
        name = presence.socket_name(self.node, self._socket_count)
        self.sockets[name] = user_id
        self._registering[name] = self._spawn(self._register(user_id, name))
        return name

    def unregister_socket(self, name: str) -> None:
        """Stop counting a socket that closed, in the background."""
        user_id = self.sockets.pop(name, None)
        if user_id is not None:
            self._spawn(self._forget(user_id, name, self._registering.get(name)))

    async def _register(self, user_id: int, name: str) -> None:
        try:
            evicted = await presence.backend().register_socket(user_id, name, settings.WS_MAX_SOCKETS_PER_USER)
        except Exception:  # the socket is served uncounted; the heartbeat counts it
            logger.warning("hub: counting a socket failed", exc_info=True)
            return
        finally:
            self._registering.pop(name, None)
        if evicted:
            try:
                await outbox.evict_sockets(user_id, evicted, CLOSE_TOO_MANY_SOCKETS)
            except Exception:  # they stay counted until they close; the next socket over the limit retries
                logger.warning("hub: closing a user's oldest socket failed", exc_info=True)

    async def _forget(self, user_id: int, name: str, registering: asyncio.Task | None) -> None:
        if registering is not None:
            await asyncio.wait([registering])  # forget after the count, not before it
        try:
            await presence.backend().forget_socket(user_id, name)
        except Exception:  # it expires with the heartbeat's TTL
            logger.warning("hub: uncounting a socket failed", exc_info=True)
