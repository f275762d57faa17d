"""The notification object of the contract, as REST responses and `new_notification` events carry it."""

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
