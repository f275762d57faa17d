"""A user's event stream: numbering and storing the per-user events, in the transaction of their change.

Per-user events are rows (`Event`), the truth that sockets replay from (notifications.replay). Each
stored row is handed to the push after commit (notifications.signals → core.outbox).
"""

from collections import Counter
from collections.abc import Callable, Iterable

from django.db import connections, router
from django.db.models.signals import post_save

from .models import Event, EventSequence, Notification


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
    for each event, in seq order per user, exactly as `Model.save()` would: the receiver
    hands the row to the push after commit (notifications.signals).
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
