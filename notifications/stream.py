"""The wire: group names, frames, and the push of stored events after commit.

Nothing else in the project calls `group_send` or spells a group name. Per-user
events are rows (`Event`) written in the transaction of the change; the
`post_save` receiver below schedules their push for after the commit, so a push
never happens for a change that rolled back, and a push that fails loses
nothing: the socket replays from the rows on resume.
"""

import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Event

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


def lock_streams(user_ids) -> None:
    """Lock the users' rows so their events get ordered sequence numbers.

    Callers that record for several users lock them all at once, in id order,
    before recording, so two transactions never wait on each other in a cycle.
    """
    ids = sorted({int(u) for u in user_ids})
    list(get_user_model().objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))


def record(*, user_id: int, type_: str, data: dict) -> Event:
    """Append an event to the user's stream; must run inside the change's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("stream.record must run inside the transaction of the change it records")
    lock_streams([user_id])
    last = Event.objects.filter(user_id=user_id).aggregate(last=Max("seq"))["last"] or 0
    return Event.objects.create(user_id=user_id, seq=last + 1, type=type_, data=data)


def last_seq(user_id: int) -> int | None:
    return Event.objects.filter(user_id=user_id).aggregate(last=Max("seq"))["last"]


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
