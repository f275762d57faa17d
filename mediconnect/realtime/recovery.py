"""Catching the hub's sockets up on what the layer could not bring them, and reading queues told changed.

A mixin of mediconnect.realtime.hub.Hub. It probes Redis (gone, or restarted: whatever was
published meanwhile is lost) and then hands every local socket its user's stream head and each
watched queue's state as they stand; without Redis it polls the streams, since the task worker
cannot push to this process. A change from below the queues' floor (an appointment's) says only
that a queue changed (`queue.changed`): the hub reads that queue's state once for the process,
keeping each queue's messages in the order they arrived.
"""

import asyncio
import logging
import sys

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.models import Doctor
from core.groups import QUEUE_CHANGED, QUEUE_PUSH, STREAM_HEAD, group_target
from core.metrics import LAYER_ERRORS, PUSH_FAILURES
from core.wire import queue_updated_frame
from mediconnect.realtime.failures import log_failure
from notifications import presence
from notifications.replay import stream_heads
from queues.selectors import queue_state
from queues.services import queue_snapshot

logger = logging.getLogger(__name__)

# How often a process checks that Redis answers and has not restarted.
LAYER_PROBE_SECONDS = 2.0


def queue_push(group: str, queue: dict) -> dict:
    """The hub's message that hands a queue's state to its local sockets."""
    return {"type": QUEUE_PUSH, "group": group, "frame": queue_updated_frame(queue), "queue": queue}


class Recovery:
    def _init_recovery(self) -> None:
        self._queue_backlog: dict[str, list[dict]] = {}

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
            kind, target = group_target(group)
            if kind == "user":
                users[group] = target
        try:
            heads = await database_sync_to_async(stream_heads)(set(users.values()))
        except Exception:
            logger.warning("hub: reading the users' streams failed; trying again at the next probe")
            return
        for group, user_id in users.items():
            if user_id in heads:
                await self.dispatch({"type": STREAM_HEAD, "group": group, "seq": heads[user_id]})

    async def _recover(self) -> None:
        """After the layer was away, hand every local socket what it may have missed: its user's
        stream head (the socket reads the events it lacks from the store) and each watched queue's
        state as it stands now. One read for all users and one snapshot per queue, for the process."""
        users, queues = {}, {}
        for group in list(self.groups):
            kind, target = group_target(group)
            if kind == "user":
                users[group] = target
            elif kind == "queue":
                queues[group] = target
        try:
            heads, queues_now = await _recovery_state(set(users.values()), set(queues.values()))
        except Exception:
            log_failure(logger, "hub: catching sockets up after the layer returned", sys.exc_info()[1])
            return
        self._spawn(self._refresh_presence())  # a restarted Redis forgot who is online here
        for group, user_id in users.items():
            await self.dispatch({"type": STREAM_HEAD, "group": group, "seq": heads.get(user_id)})
        for group, doctor_id in queues.items():
            await self.dispatch(queue_push(group, queues_now[doctor_id]))

    def _in_queue_order(self, message: dict) -> bool:
        """Take a queue's message into its backlog when it must wait for a read (or is one); False when not."""
        group = message.get("group")
        backlog = self._queue_backlog.get(group)
        if backlog is None:
            if message["type"] != QUEUE_CHANGED:
                return False
            if group not in self.groups:
                return True  # nobody here watches it any more: nothing to read
            backlog = self._queue_backlog[group] = []
            self._spawn(self._drain_queue(group, backlog))
        backlog.append(message)
        return True

    async def _drain_queue(self, group: str, backlog: list[dict]) -> None:
        try:
            while backlog:
                message = backlog.pop(0)
                if message["type"] == QUEUE_CHANGED:
                    if any(later["type"] == QUEUE_CHANGED for later in backlog):
                        continue  # a later read sees this change too
                    try:
                        queue = (await _read_queues({message["doctor_id"]}))[message["doctor_id"]]
                    except Exception:  # a client refetches on resume; the next change reads again
                        PUSH_FAILURES.inc()
                        logger.warning("hub: reading a changed queue failed", exc_info=True)
                        continue
                    message = queue_push(group, queue)
                await self._hand_out(message)
        finally:
            del self._queue_backlog[group]


def _queues_now(doctor_ids: set[int]) -> dict[int, dict]:
    """Today's queue object of each doctor that still exists."""
    doctors = Doctor.objects.filter(pk__in=doctor_ids)
    return {doctor.pk: queue_snapshot(queue_state(doctor_id=doctor.pk)) for doctor in doctors}


_read_queues = database_sync_to_async(_queues_now)


@database_sync_to_async
def _recovery_state(user_ids: set[int], doctor_ids: set[int]) -> tuple[dict[int, int | None], dict[int, dict]]:
    return stream_heads(user_ids), _queues_now(doctor_ids)
