import datetime
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import partial

from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from core.errors import NotFound

from . import stream
from .delivery import deliveries_plan
from .models import Event, EventType, Notification, PushSubscription
from .payloads import all_notifications_read_data, new_notification_data, notification_read_data
from .webpush import push_plan

# Each notification event carries the user's unread count as this transaction sees it, read right
# after its own write, by the statement that numbers the events (`stream.record_many`). Two changes
# to one user's notifications that commit at the same moment can each miss the other's row; the
# next event, or the REST count a client fetches on reconnect, carries the true number again.


# No savepoint: it runs inside the change that causes it, and a failure undoes that whole change.
@transaction.atomic(savepoint=False)
def notifications_create(
    *, notifications: Sequence[Notification], events: Iterable[tuple[int, str, dict]] = ()
) -> list[Notification]:
    """Store a change's notifications in one INSERT, and record their `new_notification` events.

    `notifications` are unsaved `Notification`s. `events` are the change's other events
    (`(user_id, type, data)`), recorded after the notifications' in the same two statements of
    `stream.record_many`, so a change costs the same few queries however many users it tells
    (plus one that counts the unread notifications of the users it notifies). A cancellation,
    reschedule or reminder for a user with no socket open also stores its email/SMS deliveries.
    """
    created = Notification.objects.bulk_create(notifications) if notifications else []
    stream.record_many([*_new_notification_events(created), *events])
    # Users with no socket open also get the important ones by email and SMS, sent by the worker.
    deliveries_plan(created)
    # And every notification goes to the users' browsers by Web Push, sent by the worker.
    push_plan(created)
    return created


def _new_notification_events(created: list[Notification]) -> list[tuple[int, str, Callable[[int], dict]]]:
    """One `new_notification` per notification, each with the unread count just after it arrived.

    The count is the stream's (read with the events' numbers, after this change's notifications);
    a user told twice in one change: the first event counts without the second notification.
    """
    entries = []
    later_unread = Counter()
    for notification in reversed(created):
        user_id = notification.user_id
        data = partial(_counted, notification, later_unread[user_id])
        entries.append((user_id, EventType.NEW_NOTIFICATION, data))
        later_unread[user_id] += not notification.is_read
    entries.reverse()
    return entries


def _counted(notification: Notification, later_unread: int, unread: int) -> dict:
    return new_notification_data(notification, unread_count=unread - later_unread)


def notification_create(
    *,
    user,
    type: str,
    title: str,
    message: str,
    related_id: int | None = None,
    related_type: str = "",
    sms_text: str = "",
) -> Notification:
    """Store one notification and its `new_notification` event in the caller's transaction."""
    notification = Notification(
        user=user, type=type, title=title, message=message, related_id=related_id, related_type=related_type
    )
    notification.sms_text = sms_text
    return notifications_create(notifications=[notification])[0]


@transaction.atomic
def notifications_mark_read(*, user, notification_id: int) -> Notification:
    """Mark one of the user's notifications read and tell all their sockets; another's id is NotFound.

    The REST API and the admin's "mark read" action call it.
    """
    notification = Notification.objects.filter(user=user, pk=notification_id).first()
    if notification is None:
        raise NotFound(gettext("No such notification."))
    if not notification.is_read:
        notification.is_read = True
        notification.save(update_fields=["is_read"])
    # The stream counts the unread ones left, with the event's number.
    stream.record_many(
        [
            (
                user.pk,
                EventType.NOTIFICATION_READ,
                lambda unread: notification_read_data(notification.pk, unread_count=unread),
            )
        ]
    )
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    updated = Notification.objects.filter(user=user, is_read=False).update(is_read=True)
    # Nothing is left unread after that UPDATE, as this transaction sees it: no need to count.
    stream.record_many([(user.pk, EventType.ALL_NOTIFICATIONS_READ, all_notifications_read_data(unread_count=0))])
    return updated


def events_prune(*, before: datetime.datetime) -> int:
    """Delete stored events created before `before` (retention: `manage.py prune`); returns how many.

    The users' sequence rows stay, so their streams go on counting from where they were; a socket
    resuming from a pruned id is told to `resync`.
    """
    deleted, _ = Event.objects.filter(created_at__lt=before).delete()
    return deleted


# A user's browsers: more than this many subscriptions and the oldest goes (a client that subscribes
# in a loop cannot grow the table, nor the messages each notification makes).
PUSH_SUBSCRIPTIONS_PER_USER = 20


@transaction.atomic
def push_subscription_add(*, user, endpoint: str, p256dh: str, auth: str) -> tuple[PushSubscription, bool]:
    """Store a browser's subscription for the user (validated by the caller's serializer); returns it and
    whether it is new. The same endpoint again: the existing row, with the keys the browser sent now."""
    existing = PushSubscription.objects.select_for_update().filter(user=user, endpoint=endpoint).first()
    if existing is not None:
        if (existing.p256dh, existing.auth) != (p256dh, auth):
            existing.p256dh, existing.auth = p256dh, auth
            existing.save(update_fields=["p256dh", "auth"])
        return existing, False
    try:
        with transaction.atomic():
            subscription = PushSubscription.objects.create(user=user, endpoint=endpoint, p256dh=p256dh, auth=auth)
    except IntegrityError:  # the same endpoint, subscribed by a request at the same moment
        return PushSubscription.objects.get(user=user, endpoint=endpoint), False
    extra = PushSubscription.objects.filter(user=user).order_by("-created_at", "-id")[PUSH_SUBSCRIPTIONS_PER_USER:]
    stale = list(extra.values_list("pk", flat=True))
    if stale:
        PushSubscription.objects.filter(pk__in=stale).delete()
    return subscription, True


@transaction.atomic
def push_subscription_delete(*, user, subscription_id: int) -> None:
    """Forget one of the user's subscriptions; another user's (or none) is NotFound."""
    deleted, _ = PushSubscription.objects.filter(user=user, pk=subscription_id).delete()
    if not deleted:
        raise NotFound(gettext("No such subscription."))


def push_subscriptions_delete_all(*, user) -> int:
    """Forget every subscription of the user (deactivation, a new password); returns how many."""
    _, per_model = PushSubscription.objects.filter(user=user).delete()
    return per_model.get("notifications.PushSubscription", 0)
