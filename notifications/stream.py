"""The wire: group names, frames, and the push of stored events after commit.

Nothing else in the project calls `group_send` or spells a group name. Per-user
events are rows (`Event`) written in the transaction of the change; the
`post_save` receiver below puts each one in the transaction's outbox, which
sends one message per user (all of that user's new events, in order) once the
transaction commits. A push never happens for a change that rolled back, and a
push that fails loses nothing: the socket replays from the rows on resume.
Every message names its group, because each server process receives all its
groups on one channel (mediconnect.realtime.hub).
"""

import asyncio
import datetime
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import OuterRef, Subquery
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from core.metrics import EVENTS_PUSHED, PUSH_FAILURES

from .models import Event, EventSequence, Notification

logger = logging.getLogger(__name__)

# Layer message types; the consumer's handlers carry the same names (event.push → event_push).
EVENT_PUSH = "event.push"
QUEUE_PUSH = "queue.push"
QUEUE_REVOKE = "queue.revoke"
SOCKETS_CLOSE = "sockets.close"
STREAM_HEAD = "stream.head"  # a user's newest seq, for sockets that may have missed pushes
SOCKETS_EVICT = "sockets.evict"

# Close code for a user's sockets after they logged out, were deactivated or changed their password.
CLOSE_SIGNED_OUT = 4401
# Close code for a user's oldest socket when they open one more than WS_MAX_SOCKETS_PER_USER.
CLOSE_TOO_MANY_SOCKETS = 4429

# Close codes for a display board's sockets: its token was rotated (the old URL no longer works),
# or its doctors changed (the page reconnects and shows the new set).
CLOSE_BOARD_TOKEN_ROTATED = 4401
CLOSE_BOARD_CHANGED = 4409

# A replay is read and sent this many events at a time.
REPLAY_PAGE = 100


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def queue_group(doctor_id: int) -> str:
    return f"queue.{doctor_id}"


def group_target(group: str) -> tuple[str, int]:
    """`("user", id)` or `("queue", doctor_id)`: whose group it is."""
    kind, _, target = group.partition(".")
    return kind, int(target)


def board_group(board_id: int) -> str:
    return f"board.{board_id}"


def frame(type_: str, data: dict, *, id_: int | None = None) -> str:
    """One server → client frame as sent on the socket: UTF-8 text, not `\\u` escapes."""
    body = {"type": type_, "data": data}
    if id_ is not None:
        body["id"] = id_
    text = json.dumps(body, separators=(",", ":"), default=str, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate cannot go out as UTF-8: escape it instead
        text = json.dumps(body, separators=(",", ":"), default=str)
    return text


def _reserve(connection, counts: dict[int, int], unread_of: frozenset[int] = frozenset()) -> tuple[dict, dict]:
    """Take `counts[user_id]` numbers from each user's sequence, and count the unread notifications
    of the users in `unread_of`, in one statement; returns ({user: new last seq}, {user: unread}).

    One upsert for all users, in user-id order, so two changes that touch the same users lock
    their rows in the same order and never wait on each other in a cycle. The row locks are held
    until the transaction ends: a later seq of a user always commits after an earlier one, and a
    rollback gives the numbers back, so a stream counts 1, 2, 3 ... with no gap.

    The unread count is a subquery of the upsert's RETURNING, so it sees this transaction's own
    notifications (stored before the events that tell of them) at no extra round trip.
    """
    qn = connection.ops.quote_name
    table = qn(EventSequence._meta.db_table)
    user_col = qn(EventSequence._meta.get_field("user").column)
    last_col = qn("last_seq")
    users = sorted(counts)
    values = ", ".join(["(%s, %s)"] * len(users))
    params = [value for user_id in users for value in (user_id, counts[user_id])]
    unread_sql = "NULL"
    if unread_of:
        notifications = qn(Notification._meta.db_table)
        owner = qn(Notification._meta.get_field("user").column)
        is_read = qn(Notification._meta.get_field("is_read").column)
        listed = ", ".join(["%s"] * len(unread_of))
        unread_sql = (
            f"CASE WHEN {table}.{user_col} IN ({listed}) THEN (SELECT COUNT(*) FROM {notifications} "  # noqa: S608
            f"WHERE {notifications}.{owner} = {table}.{user_col} AND {notifications}.{is_read} = %s) END"
        )
        params += [*sorted(unread_of), False]
    sql = (
        f"INSERT INTO {table} ({user_col}, {last_col}) VALUES {values} "  # noqa: S608 (quoted names, bound values)
        f"ON CONFLICT ({user_col}) DO UPDATE SET {last_col} = {table}.{last_col} + excluded.{last_col} "
        f"RETURNING {user_col}, {last_col}, {unread_sql}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    last = {user_id: seq for user_id, seq, _ in rows}
    return last, {user_id: unread for user_id, _, unread in rows if unread is not None}


def record_many(entries: Iterable[tuple[int, str, dict | Callable[[int], dict]]]) -> list[Event]:
    """Append events `(user_id, type, data)` to their users' streams, in the order given.

    Must run inside the transaction of the change it records. Two statements whatever the
    number of events or users: one upsert reserves the numbers (see `_reserve`), one INSERT
    stores the rows. An event's `data` may be a function of the user's unread notification
    count (`data(unread) -> dict`): the count is read by the same upsert, after the change's own
    notifications. `bulk_create` sends no signal, so `post_save` (created=True) is sent here
    for each event, in seq order per user, exactly as `Model.save()` would: the receiver below
    schedules the push after commit.
    """
    entries = list(entries)
    if not entries:
        return []
    using = router.db_for_write(Event)
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("stream.record_many must run inside the transaction of the change it records")
    counts = Counter(int(user_id) for user_id, _, _ in entries)
    unread_of = frozenset(int(user_id) for user_id, _, data in entries if callable(data))
    last, unread = _reserve(connection, counts, unread_of)
    next_seq = {user_id: last[user_id] - count + 1 for user_id, count in counts.items()}
    events = []
    for user_id, type_, data in entries:
        user_id = int(user_id)
        if callable(data):
            data = data(unread[user_id])
        events.append(Event(user_id=user_id, seq=next_seq[user_id], type=type_, data=data))
        next_seq[user_id] += 1
    Event.objects.using(using).bulk_create(events)
    for event in events:
        post_save.send(sender=Event, instance=event, created=True, raw=False, using=using, update_fields=None)
    return events


def last_seq(user_id: int) -> int | None:
    """The newest seq of the user's stream (None before their first event)."""
    return EventSequence.objects.filter(user_id=user_id).values_list("last_seq", flat=True).first()


def stream_heads(user_ids) -> dict[int, int]:
    """The newest seq of each user's stream (users with no event yet are left out)."""
    return dict(EventSequence.objects.filter(user_id__in=user_ids).values_list("user_id", "last_seq"))


def with_stream_head(users):
    """`users` annotated with `stream_head`: the newest seq of each one's stream (None before their first event)."""
    head = EventSequence.objects.filter(user=OuterRef("pk")).values("last_seq")[:1]
    return users.annotate(stream_head=Subquery(head))


def events_after(user_id: int, after: int, upto: int | None = None):
    """Stored events of a user after `after` (and up to `upto`), oldest first."""
    qs = Event.objects.filter(user_id=user_id, seq__gt=after).order_by("seq")
    if upto is not None:
        qs = qs.filter(seq__lte=upto)
    return qs


def replay_page(user_id: int, after: int, upto: int, size: int = REPLAY_PAGE) -> list[Event]:
    """The next `size` stored events of a user after `after` (up to `upto`), oldest first."""
    return list(events_after(user_id, after, upto).only("seq", "type", "data", "created_at")[:size])


def replayable(first_page: list[Event], after: int) -> bool:
    """Whether a resume from `after` can be replayed from the store, given the first page read after it.

    The rule: the next event (`after + 1`) must still be stored and not older than the stream's
    retention (EVENT_RETENTION_DAYS). Events are pruned oldest first, so if the next one is there
    and kept, so is every later one. Otherwise the client resyncs over REST.
    """
    if not first_page or first_page[0].seq != after + 1:
        return False
    kept_since = timezone.now() - datetime.timedelta(days=getattr(settings, "EVENT_RETENTION_DAYS", 30))
    return first_page[0].created_at >= kept_since


def resync_frame(newest: int | None) -> str:
    """Tells a client to reload its state over REST and continue from `newest`."""
    return frame("resync", {"last_event_id": newest})


def event_frame(event: Event) -> str:
    return frame(event.type, event.data, id_=event.seq)


class Outbox:
    """What one transaction has to push, sent once after it commits.

    Events are gathered per user, so a change that records four events for two users costs two
    layer messages, not four; a queue's state is sent once, as it stands at commit. The outbox
    lives only in Django's own list of commit hooks, registered at the savepoint level where its
    first push was queued: a rolled-back savepoint or transaction discards it with its rows.
    """

    def __init__(self):
        self.events: dict[int, list[list]] = {}
        self.after: dict[tuple, tuple[str, dict]] = {}  # queue states (the last one wins) and revokes

    def add_event(self, event: Event) -> None:
        self.events.setdefault(event.user_id, []).append([event.seq, event_frame(event)])

    def queue_changed(self, doctor_id: int) -> None:
        key = ("queue", doctor_id)
        self.after.pop(key, None)  # sent after what came before it
        self.after[key] = (queue_group(doctor_id), None)  # the state is read at commit (flush)

    def revoke(self, user_id: int, doctor_id: int) -> None:
        self.after[("revoke", user_id, doctor_id)] = (
            user_group(user_id),
            {"type": QUEUE_REVOKE, "doctor_id": doctor_id},
        )

    def close_sockets(self, user_id: int, code: int) -> None:
        self.after[("close", user_id)] = (user_group(user_id), {"type": SOCKETS_CLOSE, "code": code})

    def close_board(self, board_id: int, code: int) -> None:
        self.after[("board", board_id)] = (board_group(board_id), {"type": SOCKETS_CLOSE, "code": code})

    def flush(self) -> None:
        messages = [
            (user_group(user_id), {"type": EVENT_PUSH, "events": events}) for user_id, events in self.events.items()
        ]
        for key, (group, message) in self.after.items():
            if message is None:
                message = _queue_message(key[1])
            if message is not None:
                messages.append((group, message))
        # The group rides along: a process's hub receives every group's messages on one channel.
        _deliver([(group, {**message, "group": group}) for group, message in messages])


def _queue_push(add: Callable[[Outbox], None], *, harmless_if_extra: bool = False) -> None:
    """Put a push in the current transaction's outbox; outside a transaction the change is committed: send now.

    `harmless_if_extra`: a push that may go out even if the savepoint that asked for it rolls back (a
    queue's state, read at commit) joins the transaction's first outbox, so that every such push of
    the transaction meets the others there. Every outbox still in Django's list commits with the
    transaction unless a savepoint enclosing this one rolls back, and that takes this change with it.
    """
    connection = transaction.get_connection()
    # An outbox made inside savepoints that have since been released shares the fate of the
    # enclosing level, so it serves here too; one made in a savepoint still open below us does not.
    savepoints = set(connection.savepoint_ids)
    hooks = connection.run_on_commit if harmless_if_extra else reversed(connection.run_on_commit)
    for hook_savepoints, hook, _robust in hooks:  # none outside a transaction
        same_fate = harmless_if_extra or savepoints <= hook_savepoints
        if same_fate and isinstance(getattr(hook, "__self__", None), Outbox):
            add(hook.__self__)
            return
    _flush_on_commit(add)


def _flush_on_commit(add: Callable[[Outbox], None]) -> None:
    """A new outbox, sent when the transaction commits (at once outside one). `robust`: the change is
    committed by then, so a push that fails (the queue's read, the layer) is logged, and never fails
    the request or the other on-commit work; clients catch up from the stored rows on resume."""
    outbox = Outbox()
    add(outbox)
    transaction.on_commit(outbox.flush, robust=True)


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


@receiver(post_save, sender=Event, dispatch_uid="stream_push_event")
def push_event(sender, instance: Event, created: bool, **kwargs) -> None:
    if created:
        _queue_push(lambda outbox: outbox.add_event(instance))


# Today's queue object of a doctor, as the queues app reads it (queues.apps registers it): this
# module knows groups and frames, not how a queue is counted.
_read_queue: Callable[[int], dict] | None = None


def read_queues_with(read: Callable[[int], dict]) -> None:
    global _read_queue
    _read_queue = read


def queue_changed(doctor_id: int, *days: datetime.date) -> None:
    """A change touched the doctor's queue on `days`. If one is today, every socket watching the queue
    gets it as it stands once the transaction commits: once per transaction and doctor, however many
    changes (a reschedule and a status move in one PATCH, an admin action over many rows)."""
    if timezone.localdate() in days:
        _queue_push(lambda outbox: outbox.queue_changed(doctor_id), harmless_if_extra=True)


def _queue_message(doctor_id: int) -> dict | None:
    try:
        snapshot = _read_queue(doctor_id)
    except Exception:  # committed already: a failed read costs the push only (a client refetches on resume)
        PUSH_FAILURES.inc()
        logger.warning("reading doctor %s's queue for its push failed", doctor_id, exc_info=True)
        return None
    return {"type": QUEUE_PUSH, "frame": frame("queue_updated", snapshot)}


def queue_revoke(user_id: int, doctor_id: int) -> None:
    """Tell a user's sockets to leave a doctor's queue (their last active appointment ended)."""
    _queue_push(lambda outbox: outbox.revoke(user_id, doctor_id))


async def evict_sockets(user_id: int, names: list[str], code: int = CLOSE_TOO_MANY_SOCKETS) -> None:
    """Close the named sockets of a user (each process's sockets know their own name), on every process."""
    group = user_group(user_id)
    await get_channel_layer().group_send(group, {"type": SOCKETS_EVICT, "sockets": names, "code": code, "group": group})


def close_user_sockets(user_id: int, code: int = CLOSE_SIGNED_OUT) -> None:
    """Close every open socket of a user, on every server process, once the transaction commits."""
    _queue_push(lambda outbox: outbox.close_sockets(user_id, code))


def close_board_sockets(board_id: int, code: int) -> None:
    """Close every open socket of a display board, on every server process, once the transaction commits."""
    _queue_push(lambda outbox: outbox.close_board(board_id, code))
