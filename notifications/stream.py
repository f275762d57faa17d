"""The wire: group names, frames, and the push of stored events after commit.

Nothing else in the project calls `group_send` or spells a group name. Per-user
events are rows (`Event`) written in the transaction of the change; the
`post_save` receiver below schedules their push for after the commit, so a push
never happens for a change that rolled back, and a push that fails loses
nothing: the socket replays from the rows on resume.
"""

import json
import logging
from collections import Counter
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connections, router, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Event, EventSequence

logger = logging.getLogger(__name__)

# Layer message types; the consumer's handlers carry the same names (event.push → event_push).
EVENT_PUSH = "event.push"
QUEUE_PUSH = "queue.push"
QUEUE_REVOKE = "queue.revoke"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def queue_group(doctor_id: int) -> str:
    return f"queue.{doctor_id}"


def frame(type_: str, data: dict, *, id_: int | None = None) -> str:
    """One server → client frame as sent on the socket."""
    body = {"type": type_, "data": data}
    if id_ is not None:
        body["id"] = id_
    return json.dumps(body, separators=(",", ":"), default=str)


def _reserve(connection, counts: dict[int, int]) -> dict[int, int]:
    """Take `counts[user_id]` numbers from each user's sequence; returns each user's new last seq.

    One upsert for all users, in user-id order, so two changes that touch the same users lock
    their rows in the same order and never wait on each other in a cycle. The row locks are held
    until the transaction ends: a later seq of a user always commits after an earlier one, and a
    rollback gives the numbers back, so a stream counts 1, 2, 3 ... with no gap.
    """
    qn = connection.ops.quote_name
    table = qn(EventSequence._meta.db_table)
    user_col = qn(EventSequence._meta.get_field("user").column)
    last_col = qn("last_seq")
    users = sorted(counts)
    values = ", ".join(["(%s, %s)"] * len(users))
    params = [value for user_id in users for value in (user_id, counts[user_id])]
    sql = (
        f"INSERT INTO {table} ({user_col}, {last_col}) VALUES {values} "  # noqa: S608 (quoted names, bound values)
        f"ON CONFLICT ({user_col}) DO UPDATE SET {last_col} = {table}.{last_col} + excluded.{last_col} "
        f"RETURNING {user_col}, {last_col}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def record_many(entries: Iterable[tuple[int, str, dict]]) -> list[Event]:
    """Append events `(user_id, type, data)` to their users' streams, in the order given.

    Must run inside the transaction of the change it records. Two statements whatever the
    number of events or users: one upsert reserves the numbers (see `_reserve`), one INSERT
    stores the rows. `bulk_create` sends no signal, so `post_save` (created=True) is sent here
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
    last = _reserve(connection, counts)
    next_seq = {user_id: last[user_id] - count + 1 for user_id, count in counts.items()}
    events = []
    for user_id, type_, data in entries:
        user_id = int(user_id)
        events.append(Event(user_id=user_id, seq=next_seq[user_id], type=type_, data=data))
        next_seq[user_id] += 1
    Event.objects.using(using).bulk_create(events)
    for event in events:
        post_save.send(sender=Event, instance=event, created=True, raw=False, using=using, update_fields=None)
    return events


def last_seq(user_id: int) -> int | None:
    """The newest seq of the user's stream (None before their first event)."""
    return EventSequence.objects.filter(user_id=user_id).values_list("last_seq", flat=True).first()


def events_after(user_id: int, after: int, upto: int | None = None):
    """Stored events of a user after `after` (and up to `upto`), oldest first."""
    qs = Event.objects.filter(user_id=user_id, seq__gt=after).order_by("seq")
    if upto is not None:
        qs = qs.filter(seq__lte=upto)
    return qs


def event_frame(event: Event) -> str:
    return frame(event.type, event.data, id_=event.seq)


def _send(group: str, message: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, message)
    except Exception:  # the change is committed; resume repairs a lost push
        logger.warning("push to %s failed; clients will catch up on resume", group.split(".")[0], exc_info=True)


def _after_commit(group: str, message: dict) -> None:
    transaction.on_commit(lambda: _send(group, message))


@receiver(post_save, sender=Event, dispatch_uid="stream_push_event")
def push_event(sender, instance: Event, created: bool, **kwargs) -> None:
    if not created:
        return
    # The frame is built once here; every socket forwards it as it is.
    _after_commit(
        user_group(instance.user_id),
        {"type": EVENT_PUSH, "seq": instance.seq, "frame": event_frame(instance)},
    )


def queue_broadcast(doctor_id: int, snapshot: dict) -> None:
    """Send a queue's new state to every socket that joined it, after commit."""
    _after_commit(queue_group(doctor_id), {"type": QUEUE_PUSH, "frame": frame("queue_updated", snapshot)})


def queue_revoke(user_id: int, doctor_id: int) -> None:
    """Tell a user's sockets to leave a doctor's queue (their last active appointment ended)."""
    _after_commit(user_group(user_id), {"type": QUEUE_REVOKE, "doctor_id": doctor_id})
