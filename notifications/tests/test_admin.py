"""Staff in the admin: notifications are marked read through the service; the event stream is read-only."""

import pytest

from notifications.models import Event, Notification

pytestmark = pytest.mark.django_db

NOTIFICATIONS = "/admin/notifications/notification/"
EVENTS = "/admin/notifications/event/"


def test_mark_read_action_goes_through_the_service_and_tells_the_users_sockets(staff, book, patient, doctor):
    book(patient=patient, doctor=doctor, time="09:00")
    book(patient=patient, doctor=doctor, time="10:00")
    first, second = Notification.objects.filter(user=patient).order_by("id")

    response = staff.post(NOTIFICATIONS, {"action": "mark_read", "_selected_action": [first.pk]})

    assert response.status_code == 302
    assert [n.is_read for n in Notification.objects.filter(user=patient).order_by("id")] == [True, False]
    last = Event.objects.filter(user=patient).order_by("seq").last()
    assert (last.type, last.data) == ("notification_read", {"notification_id": first.pk, "unread_count": 1})

    # Already read: nothing changes and nothing more is told.
    staff.post(NOTIFICATIONS, {"action": "mark_read", "_selected_action": [first.pk]})
    assert Event.objects.filter(user=patient).order_by("seq").last().pk == last.pk


def test_is_read_is_not_editable_in_the_change_form(staff, book, patient, doctor):
    book(patient=patient, doctor=doctor)
    notification = Notification.objects.get(user=patient)
    url = f"{NOTIFICATIONS}{notification.pk}/change/"

    page = staff.get(url).content.decode()
    assert 'name="is_read"' not in page
    staff.post(url, {"is_read": "on"})

    assert not Notification.objects.get(pk=notification.pk).is_read


def test_the_event_stream_is_read_only_in_the_admin(staff, book, patient, doctor):
    book(patient=patient, doctor=doctor)
    event = Event.objects.filter(user=patient).first()

    assert staff.get(EVENTS).status_code == 200
    assert staff.get(f"{EVENTS}{event.pk}/change/").status_code == 200  # viewable
    assert staff.post(f"{EVENTS}{event.pk}/change/", {"type": "x"}).status_code == 403
    assert staff.post(f"{EVENTS}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert staff.get(f"{EVENTS}add/").status_code == 403
    changelist = staff.post(EVENTS, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert changelist.status_code in (200, 302)
    assert Event.objects.filter(pk=event.pk).exists()
    assert Event.objects.get(pk=event.pk).type == "new_notification"
