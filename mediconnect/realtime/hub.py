"""One delivery per process: the hub takes each layer message once and hands it to this process's sockets.

Channels gives every consumer a channel of its own, so one queue update to 1,000 watchers costs
1,000 layer messages, 1,000 receives and 1,000 dispatches, each through the sync thread. Here each
process (each event loop) has one hub with one channel. The hub joins a group at the layer when
its first local socket joins and leaves when the last one leaves; a message for the group arrives
once and is handed to each local socket's handler named after its type (`queue.push` →
`queue_push`), carrying a ready-made frame. Messages carry their group (notifications.stream adds
it), since every group's messages arrive on the hub's one channel.

The hub also keeps presence for the whole process: which users have a socket here, announced to
the presence store in batches and refreshed by one timer, not one task per socket. With the same
timer it refreshes its sockets in the per-user socket count (WS_MAX_SOCKETS_PER_USER): a socket
registered over the limit has the user's oldest closed with 4429, on whichever process holds it.
"""

import asyncio
import logging
import sys
import traceback
import uuid
import weakref
from collections import Counter

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from accounts.models import Doctor
from core.metrics import LAYER_ERRORS
from notifications import presence, stream
from queues.selectors import queue_state
from queues.services import queue_snapshot

logger = logging.getLogger(__name__)

# A layer hiccup (Redis restarting) is retried at this pace, at most.
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
# Bounded concurrency of group joins and leaves against the layer (a storm of connects).
LAYER_OPS_AT_ONCE = 64
# How often a process checks that Redis answers and has not restarted.
LAYER_PROBE_SECONDS = 2.0


def log_failure(log: logging.Logger, what: str, exc: BaseException) -> None:
    """Log an unexpected error with its stack but not its text, which may quote a patient's data."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    log.error("%s failed: %s (message withheld)\n%s", what, type(exc).__name__, stack)


class _Group:
    __slots__ = ("sinks", "joined", "lock")

    def __init__(self):
        self.sinks: set = set()
        self.joined = False
        self.lock = asyncio.Lock()


class Hub:
    def __init__(self, layer):
        self.layer = layer
        self.channel: str | None = None
        self.node = uuid.uuid4().hex[:16]  # this process, in presence entries
        self.groups: dict[str, _Group] = {}
        self.users: Counter[int] = Counter()
        self._ops = asyncio.Semaphore(LAYER_OPS_AT_ONCE)
        self._started: asyncio.Future | None = None
        self._tasks: set[asyncio.Task] = set()
        self._arrived: set[int] = set()
        self._left: set[int] = set()
        self._announce_lock = asyncio.Lock()
        self._announce: asyncio.Future | None = None
        self.sockets: dict[str, int] = {}  # registered socket name → user id
        self._registering: dict[str, asyncio.Task] = {}
        self._socket_count = 0
        self._rejoin: asyncio.Task | None = None
        self._layer_down = False

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

    # Groups

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

    async def _probe_layer_forever(self) -> None:
        """Notice a Redis that went away, or restarted, even where no receive fails: the pub/sub layer
        reconnects by itself, and whatever was published meanwhile is gone. A restart is told by the
        server's run id; it may be shorter than a probe's interval."""
        epoch = None
        while True:
            await asyncio.sleep(LAYER_PROBE_SECONDS)
            if not self.groups or self._layer_down:
                continue
            if not getattr(settings, "REDIS_URL", ""):
                await self._poll_streams()
                continue
            try:
                now = await asyncio.wait_for(presence.backend().epoch(), LAYER_PROBE_SECONDS)
            except Exception:
                LAYER_ERRORS.labels("probe").inc()
                logger.warning("hub: Redis is unreachable; sockets catch up when it returns")
                self._layer_lost()
                continue
            if epoch is not None and now != epoch:
                logger.warning("hub: Redis restarted; sockets catch up on what was lost")
                self._layer_lost()
            epoch = now

    async def _poll_streams(self) -> None:
        """Without Redis (one server process, an in-memory layer) the task worker, another process,
        cannot push to this one: what it stores (a reminder) reaches the sockets from the stream,
        read for every local user at each probe. One query per probe for the whole process."""
        users = {}
        for group in list(self.groups):
            kind, target = stream.group_target(group)
            if kind == "user":
                users[group] = target
        try:
            heads = await database_sync_to_async(stream.stream_heads)(set(users.values()))
        except Exception:
            logger.warning("hub: reading the users' streams failed; trying again at the next probe")
            return
        for group, user_id in users.items():
            if user_id in heads:
                await self.dispatch({"type": stream.STREAM_HEAD, "group": group, "seq": heads[user_id]})

    async def _recover(self) -> None:
        """After the layer was away, hand every local socket what it may have missed: its user's
        stream head (the socket reads the events it lacks from the store) and each watched queue's
        state as it stands now. One read for all users and one snapshot per queue, for the process."""
        users, queues = {}, {}
        for group in list(self.groups):
            kind, target = stream.group_target(group)
            if kind == "user":
                users[group] = target
            elif kind == "queue":
                queues[group] = target
        try:
            heads, frames = await _recovery_state(set(users.values()), set(queues.values()))
        except Exception:
            log_failure(logger, "hub: catching sockets up after the layer returned", sys.exc_info()[1])
            return
        self._spawn(self._refresh_presence())  # a restarted Redis forgot who is online here
        for group, user_id in users.items():
            await self.dispatch({"type": stream.STREAM_HEAD, "group": group, "seq": heads.get(user_id)})
        for group, doctor_id in queues.items():
            await self.dispatch({"type": stream.QUEUE_PUSH, "group": group, "frame": frames[doctor_id]})

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

    # Presence: which users have a socket in this process

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

    # Sockets per user, counted across processes

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
                await stream.evict_sockets(user_id, evicted, stream.CLOSE_TOO_MANY_SOCKETS)
            except Exception:  # they stay counted until they close; the next socket over the limit retries
                logger.warning("hub: closing a user's oldest socket failed", exc_info=True)

    async def _forget(self, user_id: int, name: str, registering: asyncio.Task | None) -> None:
        if registering is not None:
            await asyncio.wait([registering])  # forget after the count, not before it
        try:
            await presence.backend().forget_socket(user_id, name)
        except Exception:  # it expires with the heartbeat's TTL
            logger.warning("hub: uncounting a socket failed", exc_info=True)


@database_sync_to_async
def _recovery_state(user_ids: set[int], doctor_ids: set[int]) -> tuple[dict[int, int | None], dict[int, str]]:
    heads = stream.stream_heads(user_ids)
    frames = {
        doctor.pk: stream.frame("queue_updated", queue_snapshot(queue_state(doctor_id=doctor.pk)))
        for doctor in Doctor.objects.filter(pk__in=doctor_ids)
    }
    return heads, frames


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
