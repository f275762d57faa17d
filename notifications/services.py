from django.db import transaction
from django.utils.translation import gettext

from core.errors import NotFound

from . import stream
from .models import EventType, Notification
from .serializers import NotificationSerializer


# No savepoint: it runs inside the change that causes it, and a failure undoes that whole change.
@transaction.atomic(savepoint=False)
def notification_create(
    *, user, type: str, title: str, message: str, related_id: int | None = None, related_type: str = ""
) -> Notification:
    """Store a notification and its `new_notification` event in the caller's transaction."""
    notification = Notification.objects.create(
        user=user, type=type, title=title, message=message, related_id=related_id, related_type=related_type
    )
    stream.record(user_id=user.pk, type_=EventType.NEW_NOTIFICATION, data=NotificationSerializer(notification).data)
    return notification


@transaction.atomic
def notifications_mark_read(*, user, notification_id: int) -> Notification:
    """Mark one of the user's notifications read and tell all their sockets; another's id is NotFound."""
    stream.lock_streams([user.pk])
    notification = Notification.objects.filter(user=user, pk=notification_id).first()
    if notification is None:
        raise NotFound(gettext("No such notification."))
    if not notification.is_read:
        notification.is_read = True
        notification.save(update_fields=["is_read"])
    stream.record(user_id=user.pk, type_=EventType.NOTIFICATION_READ, data={"notification_id": notification.pk})
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    stream.lock_streams([user.pk])
    updated = Notification.objects.filter(user=user, is_read=False).update(is_read=True)
    stream.record(user_id=user.pk, type_=EventType.ALL_NOTIFICATIONS_READ, data={})
    return updated
