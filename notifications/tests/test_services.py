"""The notification services: the unread count each notification event carries, marking read."""

import pytest
from django.db import transaction

from core.errors import NotFound
from notifications.models import Event, Notification
from notifications.services import notifications_create, notifications_mark_all_read, notifications_mark_read

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


def stored_events(user) -> list[tuple[str, dict]]:
    return [(e.type, e.data) for e in Event.objects.filter(user=user).order_by("seq")]


def test_marking_one_read_tells_the_owner_how_many_are_left(patient):
    first, second = notifications_create(notifications=[unsaved(patient), unsaved(patient)])

    notifications_mark_read(user=patient, notification_id=first.pk)

    assert list(Notification.objects.filter(user=patient, is_read=True)) == [first]
    assert stored_events(patient)[-1] == ("notification_read", {"notification_id": first.pk, "unread_count": 1})
    second.refresh_from_db()
    assert not second.is_read


def test_another_users_notification_is_not_found_and_stays_unread(patient, patient2):
    (theirs,) = notifications_create(notifications=[unsaved(patient2)])

    with pytest.raises(NotFound):
        notifications_mark_read(user=patient, notification_id=theirs.pk)

    theirs.refresh_from_db()
    assert not theirs.is_read
    assert not Event.objects.filter(user=patient).exists()


def test_marking_all_read_counts_what_changed_and_leaves_other_users_alone(patient, patient2):
    notifications_create(notifications=[unsaved(patient), unsaved(patient), unsaved(patient, is_read=True)])
    notifications_create(notifications=[unsaved(patient2)])

    assert notifications_mark_all_read(user=patient) == 2

    assert not Notification.objects.filter(user=patient, is_read=False).exists()
    assert stored_events(patient)[-1] == ("all_notifications_read", {"unread_count": 0})
    assert Notification.objects.filter(user=patient2, is_read=False).count() == 1
    assert notifications_mark_all_read(user=patient) == 0
