from collections.abc import Iterable, Sequence

from django.db import transaction
from django.utils.translation import gettext

from core.errors import NotFound

from . import stream
from .models import EventType, Notification
from .payloads import notification_payload


# No savepoint: it runs inside the change that causes it, and a failure undoes that whole change.
@transaction.atomic(savepoint=False)
def notifications_create(
    *, notifications: Sequence[Notification], events: Iterable[tuple[int, str, dict]] = ()
) -> list[Notification]:
    """Store a change's notifications in one INSERT, and record their `new_notification` events.

    `notifications` are unsaved `Notification`s. `events` are the change's other events
    (`(user_id, type, data)`), recorded after the notifications' in the same two statements of
    `stream.record_many`, so a change costs the same few queries however many users it tells.
    """
    created = Notification.objects.bulk_create(notifications) if notifications else []
    stream.record_many(
        [
            *((n.user_id, EventType.NEW_NOTIFICATION, notification_payload(n)) for n in created),
            *events,
        ]
    )
    return created


def notification_create(
    *, user, type: str, title: str, message: str, related_id: int | None = None, related_type: str = ""
) -> Notification:
    """Store one notification and its `new_notification` event in the caller's transaction."""
    notification = Notification(
        user=user, type=type, title=title, message=message, related_id=related_id, related_type=related_type
    )
    return notifications_create(notifications=[notification])[0]


@transaction.atomic
def notifications_mark_read(*, user, notification_id: int) -> Notification:
    """Mark one of the user's notifications read and tell all their sockets; another's id is NotFound."""
    notification = Notification.objects.filter(user=user, pk=notification_id).first()
    if notification is None:
        raise NotFound(gettext("No such notification."))
    if not notification.is_read:
        notification.is_read = True
        notification.save(update_fields=["is_read"])
    stream.record_many([(user.pk, EventType.NOTIFICATION_READ, {"notification_id": notification.pk})])
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    updated = Notification.objects.filter(user=user, is_read=False).update(is_read=True)
    stream.record_many([(user.pk, EventType.ALL_NOTIFICATIONS_READ, {})])
    return updated
