"""The notification services: the unread count each notification event carries."""

import pytest
from django.db import transaction

from notifications.models import Event, Notification
from notifications.services import notifications_create

pytestmark = pytest.mark.django_db


def unsaved(user, **extra) -> Notification:
    return Notification(user=user, type="APPOINTMENT_BOOKED", title="t", message="m", **extra)


def test_one_change_telling_a_user_twice_counts_each_notification_as_it_arrives(patient, patient2):
    with transaction.atomic():
        notifications_create(notifications=[unsaved(patient)])
    with transaction.atomic():
        notifications_create(
            notifications=[unsaved(patient), unsaved(patient2), unsaved(patient, is_read=True), unsaved(patient)]
        )

    def counts(user):
        events = Event.objects.filter(user=user, type="new_notification").order_by("seq")
        return [e.data["unread_count"] for e in events]

    # 1 before; then 2, 2 again (one stored as read adds nothing), 3, in the order they arrive.
    assert counts(patient) == [1, 2, 2, 3]
    assert counts(patient2) == [1]
