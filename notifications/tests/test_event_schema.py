"""Every event the server stores or pushes has exactly the keys the contract gives it (as Zulip checks
each event it sends): a key added, renamed or dropped anywhere on the way fails here."""

import pytest

from appointments.services import appointment_transition
from core import wire
from notifications.models import Event, EventType
from notifications.replay import event_frame
from notifications.services import notifications_mark_all_read, notifications_mark_read
from queues.selectors import queue_state
from queues.services import queue_snapshot
from tests.support import APPOINTMENT_KEYS, NOTIFICATION_KEYS, QUEUE_KEYS
from tests.support.frames import check_frame

pytestmark = pytest.mark.django_db

STORED = {
    EventType.APPOINTMENT_UPDATED: APPOINTMENT_KEYS,
    EventType.NEW_NOTIFICATION: NOTIFICATION_KEYS | {"unread_count"},
    EventType.NOTIFICATION_READ: {"notification_id", "unread_count"},
    EventType.ALL_NOTIFICATIONS_READ: {"unread_count"},
}
# Event types of the floors above, checked beside their code with the same keys from tests.support
# (file_updated: documents/tests/test_events.py).
ABOVE = {EventType.FILE_UPDATED}


def test_every_stored_event_type_has_its_contract_keys(book, patient, doctor, today):
    assert set(STORED) == set(EventType) - ABOVE == set(wire.STORED_TYPES) - ABOVE  # a new type needs its keys here

    appointment = book(patient=patient, doctor=doctor, date=today)
    appointment_transition(actor=doctor.user, appointment=appointment, to_status="COMPLETED")  # a review request
    first = patient.notifications.order_by("pk").first()
    notifications_mark_read(user=patient, notification_id=first.pk)
    notifications_mark_all_read(user=patient)

    events = list(Event.objects.filter(user=patient).order_by("seq"))
    assert {e.type for e in events} == set(STORED)
    for event in events:
        assert set(event.data) == STORED[event.type], event.type
        check_frame(event_frame(event))  # and its frame is the one core/wire.py declares


def test_the_queue_object_of_queue_updated_has_its_contract_keys(book, patient, doctor, today):
    book(patient=patient, doctor=doctor, date=today)

    assert set(queue_snapshot(queue_state(doctor_id=doctor.pk))) == QUEUE_KEYS
