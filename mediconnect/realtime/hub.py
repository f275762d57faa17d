"""One delivery per process: the hub takes each layer message once and hands it to this process's sockets.

Channels gives every consumer a channel of its own, so one queue update to 1,000 watchers costs
1,000 layer messages, 1,000 receives and 1,000 dispatches, each through the sync thread. Here each
process (each event loop) has one hub with one channel. The hub joins a group at the layer when
its first local socket joins and leaves when the last one leaves (membership); a message for the
group arrives once and is handed to each local socket's handler named after its type (`queue.push`
→ `queue_push`), carrying a ready-made frame. Messages carry their group (core.outbox adds it),
since every group's messages arrive on the hub's one channel.

This module is the hub's life cycle and its receive loop; its other jobs are mixins of their own:
the groups at the layer (membership), catching sockets up after the layer was lost and reading
queues told changed (recovery), presence (hub_presence), and the per-user socket count
(socket_registry).
"""

import asyncio
import logging
import uuid
import weakref

from channels.layers import get_channel_layer

from core.metrics import LAYER_ERRORS
from mediconnect.realtime.failures import log_failure
from mediconnect.realtime.hub_presence import PresenceBatch
from mediconnect.realtime.membership import RETRY_SECONDS, GroupMembership
from mediconnect.realtime.recovery import Recovery
from mediconnect.realtime.socket_registry import SocketRegistry

logger = logging.getLogger(__name__)

__all__ = ["Hub", "hub", "log_failure"]


class Hub(GroupMembership, Recovery, PresenceBatch, SocketRegistry):
    def __init__(self, layer):
        self.layer = layer
        self.channel: str | None = None
        self.node = uuid.uuid4().hex[:16]  # this process, in presence entries
        self._started: asyncio.Future | None = None
        self._tasks: set[asyncio.Task] = set()
        self._init_membership()
        self._init_recovery()
        self._init_presence()
        self._init_registry()

    # Life cycle

    async def start(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        self.channel = await self.layer.new_channel()
        self._spawn(self._receive_forever())
        self._spawn(self._refresh_presence_forever())
        self._spawn(self._probe_layer_forever())

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _receive_forever(self) -> None:
        failures = 0
        while True:
            try:
                message = await self._receive()
            except Exception:
                if asyncio.current_task().cancelling():
                    raise  # a receive interrupted by shutdown may fail with the client's error instead
                LAYER_ERRORS.labels("receive").inc()
                logger.warning("hub: channel layer receive failed; retrying", exc_info=True)
                # Rejoin now, not after the next message: a Redis that restarted has forgotten this
                # process's groups, so no message would ever arrive to trigger it.
                self._layer_lost()
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
                continue
            failures = 0
            await self.dispatch(message)

    async def _receive(self) -> dict:
        # The receive runs in a task of its own that is cancelled until it stops: on Python 3.11,
        # asyncio.wait_for (which redis-py wraps around every command it sends) can swallow a
        # cancellation that lands as the command completes, and the receive would block on.
        receiving = asyncio.ensure_future(self.layer.receive(self.channel))
        try:
            await asyncio.wait([receiving])
        except asyncio.CancelledError:
            _cancel_until_done(receiving)
            raise
        return receiving.result()

    async def dispatch(self, message: dict) -> None:
        if self._in_queue_order(message):
            return  # handed out once its queue's state is read
        await self._hand_out(message)

    async def _hand_out(self, message: dict) -> None:
        state = self.groups.get(message.get("group"))
        if state is None:
            return
        handler_name = message["type"].replace(".", "_")
        for sink in list(state.sinks):
            try:
                # A handler may finish at once (a shared frame written straight) and return None.
                pending = getattr(sink, handler_name)(message)
                if pending is not None:
                    await pending
            except Exception as exc:  # one broken socket must not cost the others their message
                log_failure(logger, f"hub: {handler_name} handler", exc)


def _cancel_until_done(task: asyncio.Task, every: float = 0.05) -> None:
    if not task.done():
        task.cancel()
        asyncio.get_running_loop().call_later(every, _cancel_until_done, task, every)


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This event loop's hub (one per server process), on the current channel layer."""
    loop = asyncio.get_running_loop()
    layer = get_channel_layer()
    current = _hubs.get(loop)
    if current is None or current.layer is not layer:
        current = _hubs[loop] = Hub(layer)
    return current
