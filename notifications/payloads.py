"""The notification object of the contract, and the data of the events about notifications."""

from core.payloads import wire_datetime

from .models import Notification


def notification_payload(notification: Notification) -> dict:
    return {
        "id": notification.pk,
        "type": notification.type,
        "title": notification.title,
        "message": notification.message,
        "related_id": notification.related_id,
        "related_type": notification.related_type,
        "is_read": notification.is_read,
        "created_at": wire_datetime(notification.created_at),
    }


# The notification events carry the user's unread count right after the change, so a badge
# follows the stream without asking the REST API.


def new_notification_data(notification: Notification, *, unread_count: int) -> dict:
    """`new_notification`: the notification object, with `unread_count` beside its keys."""
    return {**notification_payload(notification), "unread_count": unread_count}


def notification_read_data(notification_id: int, *, unread_count: int) -> dict:
    return {"notification_id": notification_id, "unread_count": unread_count}


def all_notifications_read_data(*, unread_count: int) -> dict:
    return {"unread_count": unread_count}
