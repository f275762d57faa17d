"""The domain services: booking, the status guard, rescheduling, their notifications and events."""

import datetime
import itertools
from unittest import mock

import pytest
from django.utils import timezone

from appointments import services
from appointments.models import Appointment, Status
from appointments.serializers import AppointmentSerializer
from appointments.services import appointment_change, appointment_reschedule, appointment_transition
from core import groups
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from notifications.models import Event, Notification
from tests.support import ALL_STATUSES, CONTRACT_MOVES, hhmm

pytestmark = pytest.mark.django_db

P, C, D, X, N = Status.PENDING, Status.CONFIRMED, Status.COMPLETED, Status.CANCELLED, Status.NO_SHOW
ROLES = ["patient", "doctor", "admin"]

# What each move stores: (recipient, type, title or None when the contract leaves it open).
MOVE_NOTIFICATIONS = {
    "CONFIRMED": [("patient", "APPOINTMENT_CONFIRMED", "Appointment Confirmed")],
    "CANCELLED": [("patient", "APPOINTMENT_CANCELLED", None), ("doctor", "APPOINTMENT_CANCELLED", None)],
    "COMPLETED": [("patient", "REVIEW_REQUEST", "How was your appointment?")],
    "NO_SHOW": [],
}

SECRET = "persistent chest pain, HIV status"


def mark() -> int:
    """The id of the newest notification now; later ones are what a change stored."""
    last = Notification.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def notifications_since(mark_id: int) -> list[Notification]:
    return list(Notification.objects.filter(id__gt=mark_id).order_by("id"))


def events_of(user) -> list[Event]:
    return list(Event.objects.filter(user=user).order_by("seq"))


def set_status(appointment: Appointment, status: str) -> Appointment:
    """Put an appointment in a state for the test, without the service (no notifications)."""
    Appointment.objects.filter(pk=appointment.pk).update(status=status)
    appointment.refresh_from_db()
    return appointment


@pytest.fixture
def actors(patient, doctor, admin_user):
    return {"patient": patient, "doctor": doctor.user, "admin": admin_user}


# --- the guard ---------------------------------------------------------------------------------


def test_the_code_table_is_the_contract_table():
    table = {(str(before), str(after)): set(roles) for (before, after), roles in services.TRANSITIONS.items()}
    assert table == CONTRACT_MOVES


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("from_status", "to_status"), list(itertools.product(ALL_STATUSES, repeat=2)))
def test_every_move_for_every_role(book, actors, patient, doctor, role, from_status, to_status):
    appointment = set_status(book(patient=patient, doctor=doctor, reason=SECRET), from_status)
    before = mark()
    events_before = {who: len(events_of(user)) for who, user in (("patient", patient), ("doctor", doctor.user))}

    allowed = CONTRACT_MOVES.get((from_status, to_status))
    if allowed is None:
        with pytest.raises(InvalidInput) as refused:
            appointment_transition(actor=actors[role], appointment=appointment, to_status=to_status)
        assert refused.value.field == "status"
    elif role not in allowed:
        with pytest.raises(NotAllowed):
            appointment_transition(actor=actors[role], appointment=appointment, to_status=to_status)
    else:
        moved = appointment_transition(actor=actors[role], appointment=appointment, to_status=to_status)
        assert moved.status == to_status
        appointment.refresh_from_db()
        assert appointment.status == to_status
        stored = notifications_since(before)
        expected = MOVE_NOTIFICATIONS[to_status]
        assert [(n.user_id, n.type) for n in stored] == [(actors[who].pk, kind) for who, kind, _ in expected]
        for notification, (_, _, title) in zip(stored, expected, strict=True):
            if title:
                assert notification.title == title
            assert (notification.related_id, notification.related_type) == (appointment.pk, "Appointment")
            assert SECRET not in notification.title + notification.message
        # Both sides hear the new state on their stream.
        for who, user in (("patient", patient), ("doctor", doctor.user)):
            updates = [e for e in events_of(user)[events_before[who] :] if e.type == "appointment_updated"]
            assert [e.data["status"] for e in updates] == [to_status]
        return

    appointment.refresh_from_db()
    assert appointment.status == from_status
    assert notifications_since(before) == []
    assert len(events_of(patient)) == events_before["patient"]


@pytest.mark.parametrize("outsider", ["patient2", "doctor2"])
def test_a_stranger_to_the_appointment_cannot_move_it(request, book, patient, doctor, outsider):
    appointment = book(patient=patient, doctor=doctor)
    stranger = request.getfixturevalue(outsider)

    with pytest.raises(NotFound):
        appointment_transition(actor=getattr(stranger, "user", stranger), appointment=appointment, to_status=X)
    appointment.refresh_from_db()
    assert appointment.status == C


def test_completing_records_when(book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)
    done = appointment_transition(actor=doctor.user, appointment=appointment, to_status=D)
    assert done.completed_at is not None
    assert abs(done.completed_at - timezone.now()) < datetime.timedelta(minutes=5)


# --- booking -----------------------------------------------------------------------------------


def test_booking_confirms_numbers_and_notifies_both_sides(book, patient, doctor, tomorrow):
    before = mark()

    appointment = book(patient=patient, doctor=doctor, time="09:30", reason=SECRET)

    assert (appointment.status, appointment.queue_number) == (C, 1)
    to_patient, to_doctor = notifications_since(before)
    assert (to_patient.user, to_patient.type, to_patient.title) == (
        patient,
        "APPOINTMENT_CONFIRMED",
        "Appointment Confirmed",
    )
    assert to_patient.message == f"Your appointment with Dr. Doc scheduled for {tomorrow.isoformat()} at 09:30"
    assert (to_doctor.user, to_doctor.type) == (doctor.user, "APPOINTMENT_BOOKED")
    for notification in (to_patient, to_doctor):
        assert (notification.related_id, notification.related_type, notification.is_read) == (
            appointment.pk,
            "Appointment",
            False,
        )
        assert SECRET not in notification.title + notification.message


def test_booking_records_a_notification_and_an_update_event_for_each_side(book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)
    expected_object = AppointmentSerializer(appointment).data

    for user in (patient, doctor.user):
        events = events_of(user)
        assert [(e.seq, e.type) for e in events] == [(1, "new_notification"), (2, "appointment_updated")]
        notification = Notification.objects.get(user=user)
        assert events[0].data["id"] == notification.pk
        assert events[0].data["type"] == notification.type
        assert events[1].data == expected_object


def test_queue_numbers_count_per_doctor_and_day(book, patient, patient2, doctor, doctor2, tomorrow):
    day_after = tomorrow + datetime.timedelta(days=1)
    numbers = [
        book(patient=patient, doctor=doctor, time="09:00").queue_number,
        book(patient=patient2, doctor=doctor, time="08:00").queue_number,
        book(patient=patient, doctor=doctor2, time="09:00").queue_number,
        book(patient=patient, doctor=doctor, time="10:00", date=day_after).queue_number,
        book(patient=patient2, doctor=doctor, time="11:00").queue_number,
    ]
    assert numbers == [1, 2, 1, 1, 3]


def test_a_held_slot_is_a_conflict_and_stores_nothing(book, patient, patient2, doctor):
    book(patient=patient, doctor=doctor, time="09:00")
    before, events_before = mark(), Event.objects.count()

    with pytest.raises(Conflict) as conflict:
        book(patient=patient2, doctor=doctor, time="09:00")

    assert conflict.value.field == "time"
    assert Appointment.objects.count() == 1
    assert notifications_since(before) == [] and Event.objects.count() == events_before


def test_a_cancelled_slot_can_be_booked_again_with_a_new_number(book, patient, patient2, doctor):
    first = book(patient=patient, doctor=doctor, time="09:00")
    appointment_transition(actor=patient, appointment=first, to_status=X)

    again = book(patient=patient2, doctor=doctor, time="09:00")

    assert (again.status, again.queue_number, again.patient) == (C, 2, patient2)
    assert Appointment.objects.filter(doctor=doctor, status=X).count() == 1


def test_the_same_time_with_another_doctor_is_free(book, patient, doctor, doctor2):
    book(patient=patient, doctor=doctor, time="09:00")
    assert book(patient=patient, doctor=doctor2, time="09:00").queue_number == 1


def test_a_patient_always_books_for_themselves(book, patient, patient2, doctor):
    appointment = book(actor=patient, patient=patient2, doctor=doctor)
    assert appointment.patient == patient


def test_a_doctor_books_for_a_patient_in_their_own_schedule(book, patient, doctor, doctor2):
    appointment = book(actor=doctor, patient=patient, doctor=doctor)
    assert (appointment.patient, appointment.doctor) == (patient, doctor)

    with pytest.raises(NotAllowed):
        book(actor=doctor, patient=patient, doctor=doctor2)


def test_staff_must_name_a_patient(book, admin_user, patient, doctor, doctor2):
    with pytest.raises(InvalidInput) as refused:
        book(actor=admin_user, patient=None, doctor=doctor)
    assert refused.value.field == "patient"
    with pytest.raises(InvalidInput):
        book(actor=admin_user, patient=doctor2.user, doctor=doctor)

    assert book(actor=admin_user, patient=patient, doctor=doctor).patient == patient


def test_a_past_date_is_refused_and_any_time_today_is_bookable(book, patient, doctor, today):
    with pytest.raises(InvalidInput) as refused:
        book(patient=patient, doctor=doctor, date=today - datetime.timedelta(days=1))
    assert refused.value.field == "date"

    assert book(patient=patient, doctor=doctor, date=today, time="00:01").status == C


# --- reschedule --------------------------------------------------------------------------------


def test_rescheduling_the_same_day_keeps_the_number_and_notifies_both(book, patient, doctor, tomorrow):
    book(patient=patient, doctor=doctor, time="08:00")
    appointment = book(patient=patient, doctor=doctor, time="09:00", reason=SECRET)
    before = mark()

    moved = appointment_reschedule(actor=patient, appointment=appointment, time=hhmm("11:15"))

    assert (moved.date, moved.time, moved.queue_number) == (tomorrow, hhmm("11:15"), 2)
    stored = notifications_since(before)
    assert [(n.user, n.type) for n in stored] == [
        (patient, "APPOINTMENT_RESCHEDULED"),
        (doctor.user, "APPOINTMENT_RESCHEDULED"),
    ]
    assert all("11:15" in n.message and SECRET not in n.title + n.message for n in stored)
    assert events_of(patient)[-1].data["time"] == "11:15"
    assert events_of(doctor.user)[-1].type == "appointment_updated"


def test_rescheduling_to_another_day_takes_that_days_next_number(book, patient, patient2, doctor, tomorrow):
    later = tomorrow + datetime.timedelta(days=3)
    book(patient=patient2, doctor=doctor, date=later, time="09:00")
    appointment = book(patient=patient, doctor=doctor, time="09:00")

    moved = appointment_reschedule(actor=doctor.user, appointment=appointment, date=later, time=hhmm("10:00"))

    assert (moved.date, moved.queue_number) == (later, 2)
    # The old slot is free again.
    assert book(patient=patient2, doctor=doctor, date=tomorrow, time="09:00").status == C


def test_rescheduling_onto_a_held_slot_is_a_conflict(book, patient, patient2, doctor, tomorrow):
    book(patient=patient2, doctor=doctor, time="10:00")
    appointment = book(patient=patient, doctor=doctor, time="09:00")
    before = mark()

    with pytest.raises(Conflict):
        appointment_reschedule(actor=patient, appointment=appointment, time=hhmm("10:00"))

    appointment.refresh_from_db()
    assert appointment.time == hhmm("09:00")
    assert notifications_since(before) == []


def test_rescheduling_into_the_past_is_refused(book, patient, doctor, today):
    appointment = book(patient=patient, doctor=doctor)
    with pytest.raises(InvalidInput) as refused:
        appointment_reschedule(actor=patient, appointment=appointment, date=today - datetime.timedelta(days=1))
    assert refused.value.field == "date"


@pytest.mark.parametrize("status", [D, X, N])
def test_a_finished_appointment_cannot_be_rescheduled(book, patient, doctor, status):
    appointment = set_status(book(patient=patient, doctor=doctor), status)
    with pytest.raises(InvalidInput):
        appointment_reschedule(actor=doctor.user, appointment=appointment, time=hhmm("12:00"))


def test_a_stranger_cannot_reschedule(book, patient, patient2, doctor):
    appointment = book(patient=patient, doctor=doctor)
    with pytest.raises(NotFound):
        appointment_reschedule(actor=patient2, appointment=appointment, time=hhmm("12:00"))


# --- the event stream --------------------------------------------------------------------------


def test_every_change_appends_to_each_users_stream_without_gaps(book, patient, patient2, doctor, admin_user):
    first = book(patient=patient, doctor=doctor, time="09:00", reason=SECRET)
    second = book(patient=patient2, doctor=doctor, time="09:30")
    appointment_reschedule(actor=patient, appointment=first, time=hhmm("10:00"))
    appointment_transition(actor=doctor.user, appointment=first, to_status=D)
    appointment_transition(actor=admin_user, appointment=second, to_status=X)
    third = book(patient=patient, doctor=doctor, time="11:00")
    appointment_transition(actor=patient, appointment=third, to_status=X)

    for user in (patient, patient2, doctor.user):
        seqs = [e.seq for e in events_of(user)]
        assert seqs == list(range(1, len(seqs) + 1))
    # patient: booked (2) + rescheduled (2) + completed (2) + booked (2) + cancelled (2)
    assert len(events_of(patient)) == 10
    assert len(events_of(patient2)) == 4
    assert [e.type for e in events_of(patient)[-2:]] == ["new_notification", "appointment_updated"]
    for notification in Notification.objects.all():
        assert SECRET not in notification.title + notification.message


@pytest.mark.django_db(transaction=True)  # the PATCH's own transaction commits, as in production
def test_a_move_off_today_and_a_status_move_in_one_patch_push_todays_queue_once(book, patient, doctor, today, tomorrow):
    appointment = book(patient=patient, doctor=doctor, date=today)
    with mock.patch("core.outbox._deliver") as deliver:
        appointment_change(actor=patient, appointment=appointment, date=tomorrow, status=Status.CANCELLED)

    queue_pushes = [
        m for call in deliver.call_args_list for group, m in call.args[0] if group == groups.queue_group(doctor.pk)
    ]
    # The queue is counted on the floor above: each server process with watchers reads it when told
    # (its frame is checked in mediconnect/realtime/tests/test_consumers.py).
    assert queue_pushes == [
        {"type": groups.QUEUE_CHANGED, "doctor_id": doctor.pk, "group": groups.queue_group(doctor.pk)}
    ]


# --- Idempotency-Key records (the API's repeats go through these) -----------------------------


def test_an_idempotency_key_is_claimed_once_and_keeps_the_first_response_without_its_reason(patient, patient2):
    record, first = services.idempotency_record_claim(user=patient, key="k", fingerprint="f")
    services.idempotency_record_complete(record=record, status=201, body={"id": 7, "reason": "chest pain"})

    again, repeated_first = services.idempotency_record_claim(user=patient, key="k", fingerprint="f")
    theirs, theirs_first = services.idempotency_record_claim(user=patient2, key="k", fingerprint="g")

    assert (first, repeated_first, theirs_first) == (True, False, True)
    assert again.pk == record.pk and theirs.pk != record.pk
    assert (again.response_status, again.response_body) == (201, {"id": 7, "reason": None})


def test_an_idempotency_key_claimed_for_another_request_is_refused_on_the_key(patient):
    services.idempotency_record_claim(user=patient, key="k", fingerprint="f")

    with pytest.raises(InvalidInput) as refused:
        services.idempotency_record_claim(user=patient, key="k", fingerprint="other")

    assert refused.value.field == "idempotency_key"


def test_the_idempotency_api_writes_through_the_services(api, patient, doctor, tomorrow):
    from appointments import api as appointments_api

    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}
    claim_service, complete_service = services.idempotency_record_claim, services.idempotency_record_complete
    with (
        mock.patch.object(appointments_api, "idempotency_record_claim", wraps=claim_service) as claim,
        mock.patch.object(appointments_api, "idempotency_record_complete", wraps=complete_service) as complete,
    ):
        response = api(patient).post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 201
    assert claim.call_count == complete.call_count == 1
