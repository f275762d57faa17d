"""Push after commit: what a transaction has for the channel layer, sent once it commits, in one hop.

Every push goes through here: the stored events (notifications.signals hands each new row over),
queue states, a user's sockets told to leave a queue or to close, a board's sockets closed. Nothing
is pushed for a change that rolled back, and a push that fails loses nothing: the sockets replay
from the stored rows.

One layer message per user (and per queue) per transaction, through `transaction.on_commit` only.
Each call registers a commit hook of its own (`_Piece`), so a rolled-back savepoint discards its
pieces with it, as Django promises. The first piece that runs at commit takes every piece still
registered and sends them together; the others then find nothing left. "Still registered" is told
by a weak reference: the connection's list of commit hooks holds the only strong one, and a
savepoint's rollback drops it there (CPython frees the piece at once, with its last reference).
"""

import asyncio
import logging
import weakref
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.groups import (
    CALL_RELAY,
    EVENT_PUSH,
    QUEUE_CHANGED,
    QUEUE_PUSH,
    QUEUE_REVOKE,
    SOCKETS_CLOSE,
    SOCKETS_EVICT,
    board_group,
    queue_group,
    user_group,
)
from core.metrics import EVENTS_PUSHED, PUSH_FAILURES
from core.wire import CLOSE_SIGNED_OUT, CLOSE_TOO_MANY_SOCKETS, queue_updated_frame

logger = logging.getLogger(__name__)

QueueReader = Callable[[], dict]  # today's queue object of one doctor, read at commit


class Outbox:
    """What one transaction sends: events gathered per user, then queue states (read at commit,
    the last change of a queue sent last) and the other messages, in the order they were asked for."""

    def __init__(self):
        self.events: dict[int, list[list]] = {}
        self.after: dict[tuple, tuple[str, dict | None]] = {}
        self.readers: dict[int, QueueReader | None] = {}

    def add_event(self, user_id: int, seq: int, text: str) -> None:
        self.events.setdefault(user_id, []).append([seq, text])

    def queue_changed(self, doctor_id: int, read: QueueReader | None) -> None:
        key = ("queue", doctor_id)
        self.after.pop(key, None)  # sent after what came before it
        self.after[key] = (queue_group(doctor_id), None)
        self.readers[doctor_id] = read or self.readers.get(doctor_id)

    def revoke(self, user_id: int, doctor_id: int) -> None:
        self.after[("revoke", user_id, doctor_id)] = (
            user_group(user_id),
            {"type": QUEUE_REVOKE, "doctor_id": doctor_id},
        )

    def close_sockets(self, user_id: int, code: int) -> None:
        self.after[("close", user_id)] = (user_group(user_id), {"type": SOCKETS_CLOSE, "code": code})

    def close_board(self, board_id: int, code: int) -> None:
        self.after[("board", board_id)] = (board_group(board_id), {"type": SOCKETS_CLOSE, "code": code})

    def messages(self) -> list[tuple[str, dict]]:
        messages = [
            (user_group(user_id), {"type": EVENT_PUSH, "events": events}) for user_id, events in self.events.items()
        ]
        for key, (group, message) in self.after.items():
            if message is None:
                message = _queue_message(key[1], self.readers[key[1]])
            if message is not None:
                messages.append((group, message))
        # The group rides along: a process's hub receives every group's messages on one channel.
        return [(group, {**message, "group": group}) for group, message in messages]


def _queue_message(doctor_id: int, read: QueueReader | None) -> dict | None:
    if read is None:  # the caller cannot read a queue (it sits below queues/): each hub reads it
        return {"type": QUEUE_CHANGED, "doctor_id": doctor_id}
    try:
        queue = read()
    except Exception:  # committed already: a failed read costs the push only (a client refetches on resume)
        PUSH_FAILURES.inc()
        logger.warning("reading doctor %s's queue for its push failed", doctor_id, exc_info=True)
        return None
    return {"type": QUEUE_PUSH, "frame": queue_updated_frame(queue), "queue": queue}


class _Piece:
    """One call's push, registered as a commit hook of its own (its bound `send`)."""

    __slots__ = ("add", "batch", "__weakref__")

    def __init__(self, add: Callable[[Outbox], None], batch: "_Batch"):
        self.add, self.batch = add, batch

    def send(self) -> None:
        self.batch.flush()


class _Batch:
    """The pieces a connection's transaction has registered (weakly: Django's list holds them)."""

    def __init__(self):
        self.pieces: list[weakref.ref] = []

    def register(self, add: Callable[[Outbox], None]) -> None:
        piece = _Piece(add, self)
        # Dead references are pieces a rollback dropped; forget them as we go.
        self.pieces = [ref for ref in self.pieces if ref() is not None]
        self.pieces.append(weakref.ref(piece))
        # robust: the change is committed by then, so a push that fails (a queue's read, the layer) is
        # logged and never fails the request or the other commit hooks.
        transaction.on_commit(piece.send, robust=True)  # the bound method holds the piece

    def flush(self) -> None:
        pieces = [piece for piece in (ref() for ref in self.pieces) if piece is not None]
        self.pieces = []
        if not pieces:
            return  # an earlier piece of this commit took them all
        outbox = Outbox()
        for piece in pieces:
            piece.add(outbox)
        _deliver(outbox.messages())


_batches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _push(add: Callable[[Outbox], None]) -> None:
    """Put a push in the current transaction's outbox; outside a transaction the change is committed: send now."""
    connection = transaction.get_connection()
    batch = _batches.get(connection)
    if batch is None:
        batch = _batches[connection] = _Batch()
    batch.register(add)


def _deliver(messages: list[tuple[str, dict]]) -> None:
    """Hand a committed transaction's messages to the layer, waiting at most PUSH_TIMEOUT_SECONDS.

    The messages go in one hop to the event loop and are sent in order, so a healthy layer delivers
    a user's pushes in the order their transactions committed. A hung or absent Redis costs the
    request that timeout at most, not the layer's own socket timeouts per message: what was not
    sent by then is dropped (and logged). A lost push loses nothing stored: a socket fills the gap
    from the rows when the next push arrives, or replays on resume.
    """
    if messages:
        async_to_sync(_group_send_all)(messages)


async def _group_send_all(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    sent = 0

    async def send_in_order():
        nonlocal sent
        for group, message in messages:
            try:
                await layer.group_send(group, message)
            except Exception:  # the change is committed; resume (or the next event's gap) repairs a lost push
                PUSH_FAILURES.inc()
                logger.warning("push to %s failed; clients will catch up on resume", group.split(".")[0], exc_info=True)
            else:
                if message["type"] == EVENT_PUSH:
                    EVENTS_PUSHED.inc(len(message["events"]))
            sent += 1

    try:
        await asyncio.wait_for(send_in_order(), timeout=settings.PUSH_TIMEOUT_SECONDS)
    except TimeoutError:
        PUSH_FAILURES.inc(len(messages) - sent)
        logger.warning(
            "channel layer did not take %d of %d push(es) within %ss; clients will catch up on resume",
            len(messages) - sent,
            len(messages),
            settings.PUSH_TIMEOUT_SECONDS,
        )


# What the floors above ask for.


def event_stored(user_id: int, seq: int, text: str) -> None:
    """A per-user event was stored: its frame goes to the user's sockets once the transaction commits."""
    _push(lambda outbox: outbox.add_event(user_id, seq, text))


def queue_changed(doctor_id: int, *days, read: QueueReader | None = None) -> None:
    """A change touched the doctor's queue on `days`. If one is today, every socket watching the queue
    gets it as `read()` returns it once the transaction commits: once per transaction and doctor,
    however many changes. A caller that cannot read a queue passes no `read`: then each server
    process with watchers reads it when told (mediconnect.realtime.recovery)."""
    if timezone.localdate() in days:
        _push(lambda outbox: outbox.queue_changed(doctor_id, read))


def queue_revoke(user_id: int, doctor_id: int) -> None:
    """Tell a user's sockets to leave a doctor's queue (their last active appointment ended)."""
    _push(lambda outbox: outbox.revoke(user_id, doctor_id))


def close_user_sockets(user_id: int, code: int = CLOSE_SIGNED_OUT) -> None:
    """Close every open socket of a user, on every server process, once the transaction commits."""
    _push(lambda outbox: outbox.close_sockets(user_id, code))


def close_board_sockets(board_id: int, code: int) -> None:
    """Close every open socket of a display board, on every server process, once the transaction commits."""
    _push(lambda outbox: outbox.close_board(board_id, code))


async def evict_sockets(user_id: int, names: list[str], code: int = CLOSE_TOO_MANY_SOCKETS) -> None:
    """Close the named sockets of a user (each process's sockets know their own name), on every process, now."""
    group = user_group(user_id)
    await get_channel_layer().group_send(group, {"type": SOCKETS_EVICT, "sockets": names, "code": code, "group": group})


async def call_relay(user_id: int, text: str) -> None:
    """Hand a video visit's signal frame to every open socket of a user, on every process, now.

    Live only: nothing is stored, nothing to replay (a signal is stale within seconds, and its SDP and
    ICE candidates carry network addresses). A layer that fails raises to the sender's handler.
    """
    group = user_group(user_id)
    await get_channel_layer().group_send(group, {"type": CALL_RELAY, "frame": text, "group": group})
