"""The hub's groups at the channel layer: joined when a process's first socket joins, left with its last.

A mixin of mediconnect.realtime.hub.Hub: one layer subscription per group per process, however many
local sockets hear it, and every group joined again after the layer was lost (a restarted Redis has
forgotten them).
"""

import asyncio
import logging

from core.metrics import LAYER_ERRORS

logger = logging.getLogger(__name__)

# A layer hiccup (Redis restarting) is retried at this pace, at most.
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
# Bounded concurrency of group joins and leaves against the layer (a storm of connects).
LAYER_OPS_AT_ONCE = 64


class _Group:
    __slots__ = ("sinks", "joined", "lock")

    def __init__(self):
        self.sinks: set = set()
        self.joined = False
        self.lock = asyncio.Lock()


class GroupMembership:
    def _init_membership(self) -> None:
        self.groups: dict[str, _Group] = {}
        self._ops = asyncio.Semaphore(LAYER_OPS_AT_ONCE)
        self._rejoin: asyncio.Task | None = None
        self._layer_down = False

    async def join(self, group: str, sink) -> None:
        """Hand `group`'s messages to `sink`; returns once the process hears the group."""
        await self.start()
        state = self.groups.get(group)
        if state is None:
            state = self.groups[group] = _Group()
        state.sinks.add(sink)
        try:
            await self._sync(group, state)
        except Exception:
            LAYER_ERRORS.labels("join").inc()
            raise

    def leave(self, group: str, sink) -> None:
        """Stop handing `group`'s messages to `sink`; the last one out makes the process leave, in the background."""
        state = self.groups.get(group)
        if state is None or sink not in state.sinks:
            return
        state.sinks.discard(sink)
        if not state.sinks:
            self._spawn(self._leave_layer(group, state))

    async def _leave_layer(self, group: str, state: _Group) -> None:
        try:
            await self._sync(group, state)
        except Exception:  # a group left joined only costs a message nobody here hears; it expires
            LAYER_ERRORS.labels("leave").inc()
            logger.warning("hub: leaving a group failed", exc_info=True)

    async def _sync(self, group: str, state: _Group) -> None:
        # One layer operation at a time per group, each making the layer match who is here now.
        async with state.lock:
            wanted = bool(state.sinks)
            if wanted != state.joined:
                async with self._ops:
                    if wanted:
                        await self.layer.group_add(group, self.channel)
                    else:
                        await self.layer.group_discard(group, self.channel)
                state.joined = wanted
            if not state.sinks and not state.joined and self.groups.get(group) is state:
                del self.groups[group]

    def _rejoin_soon(self) -> None:
        """Join every group again, once (one rejoin at a time, retried until the layer answers)."""
        if self._rejoin is None or self._rejoin.done():
            self._rejoin = self._spawn(self._rejoin_all())

    async def _rejoin_all(self) -> None:
        """After the layer failed, join every group again: a restarted Redis has forgotten them."""
        attempt = 0
        while True:
            try:
                for group, state in list(self.groups.items()):
                    if state.joined:
                        async with self._ops:
                            await self.layer.group_add(group, self.channel)
                break
            except Exception:
                LAYER_ERRORS.labels("rejoin").inc()
                logger.warning("hub: rejoining groups failed; trying again", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1
        if self._layer_down:
            self._layer_down = False
            await self._recover()

    def _layer_lost(self) -> None:
        self._layer_down = True
        self._rejoin_soon()
