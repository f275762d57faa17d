"""Clinic staff in the Django admin: actions and the add form go through the booking services."""

import datetime
from unittest import mock

import pytest

from appointments.models import Appointment, Status
from core import groups
from notifications.models import Event, Notification

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/appointments/appointment/"


def run_action(staff, action: str, appointments) -> None:
    response = staff.post(CHANGELIST, {"action": action, "_selected_action": [a.pk for a in appointments]})
    assert response.status_code == 302


def statuses(appointments) -> list[str]:
    return [Appointment.objects.get(pk=a.pk).status for a in appointments]


def test_confirm_action_confirms_pending_ones_and_notifies(staff, book, patient, patient2, doctor):
    one = book(patient=patient, doctor=doctor, time="09:00")
    two = book(patient=patient2, doctor=doctor, time="09:30")
    Appointment.objects.filter(pk__in=[one.pk, two.pk]).update(status=Status.PENDING)
    Notification.objects.all().delete()

    run_action(staff, "confirm", [one, two])

    assert statuses([one, two]) == [Status.CONFIRMED, Status.CONFIRMED]
    confirmed = Notification.objects.filter(type="APPOINTMENT_CONFIRMED")
    assert sorted(n.user_id for n in confirmed) == sorted([patient.pk, patient2.pk])
    assert all(n.title == "Appointment Confirmed" for n in confirmed)
    assert Notification.objects.count() == 2


def test_cancel_action_cancels_and_notifies_both_sides(staff, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)

    run_action(staff, "cancel", [appointment])

    assert statuses([appointment]) == [Status.CANCELLED]
    cancelled = Notification.objects.filter(type="APPOINTMENT_CANCELLED", related_id=appointment.pk)
    assert sorted(n.user_id for n in cancelled) == sorted([patient.pk, doctor.user.pk])
    assert Event.objects.filter(user=patient, type="appointment_updated").last().data["status"] == "CANCELLED"


def test_complete_action_asks_the_patient_for_a_review(staff, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)

    run_action(staff, "complete", [appointment])

    assert statuses([appointment]) == [Status.COMPLETED]
    assert Appointment.objects.get(pk=appointment.pk).completed_at is not None
    review = Notification.objects.get(type="REVIEW_REQUEST")
    assert (review.user, review.title) == (patient, "How was your appointment?")


def test_no_show_action(staff, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)

    run_action(staff, "no_show", [appointment])

    assert statuses([appointment]) == [Status.NO_SHOW]


def test_an_action_skips_moves_that_do_not_exist(staff, book, patient, patient2, doctor):
    done = book(patient=patient, doctor=doctor, time="09:00")
    Appointment.objects.filter(pk=done.pk).update(status=Status.COMPLETED)
    open_one = book(patient=patient2, doctor=doctor, time="10:00")

    run_action(staff, "cancel", [done, open_one])

    assert statuses([done, open_one]) == [Status.COMPLETED, Status.CANCELLED]
    assert not Notification.objects.filter(type="APPOINTMENT_CANCELLED", related_id=done.pk).exists()


def test_adding_an_appointment_in_the_admin_books_it(staff, book, patient, patient2, doctor, tomorrow):
    book(patient=patient2, doctor=doctor, time="08:00")

    response = staff.post(
        f"{CHANGELIST}add/",
        {"patient": patient.pk, "doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "10:15", "reason": "x"},
    )

    assert response.status_code == 302
    added = Appointment.objects.get(patient=patient)
    assert (added.status, added.queue_number, added.time) == (Status.CONFIRMED, 2, datetime.time(10, 15))
    assert Notification.objects.get(user=patient).type == "APPOINTMENT_CONFIRMED"
    assert Notification.objects.filter(user=doctor.user, type="APPOINTMENT_BOOKED", related_id=added.pk).exists()


def test_adding_onto_a_held_slot_books_nothing(staff, book, patient, patient2, doctor, tomorrow):
    book(patient=patient2, doctor=doctor, time="10:15")

    staff.post(
        f"{CHANGELIST}add/",
        {"patient": patient.pk, "doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "10:15"},
    )

    assert not Appointment.objects.filter(patient=patient).exists()
    assert not Notification.objects.filter(user=patient).exists()


def test_queue_number_is_read_only_in_the_admin(staff, book, patient, doctor, tomorrow):
    appointment = book(patient=patient, doctor=doctor, time="09:00")
    url = f"{CHANGELIST}{appointment.pk}/change/"

    page = staff.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="queue_number"' not in html
    assert "field-queue_number" in html  # shown, as text
    assert 'name="queue_number"' not in staff.get(f"{CHANGELIST}add/").content.decode()

    response = staff.post(
        url,
        {"date": tomorrow.isoformat(), "time": "09:00", "status": "CONFIRMED", "reason": "", "queue_number": 42},
    )

    assert response.status_code == 302
    assert Appointment.objects.get(pk=appointment.pk).queue_number == 1


def test_changing_the_status_in_the_change_form_goes_through_the_guard(staff, book, patient, doctor, tomorrow):
    appointment = book(patient=patient, doctor=doctor, time="09:00")
    url = f"{CHANGELIST}{appointment.pk}/change/"

    staff.post(url, {"date": tomorrow.isoformat(), "time": "09:00", "status": "COMPLETED", "reason": ""})
    assert Appointment.objects.get(pk=appointment.pk).status == Status.COMPLETED
    assert Notification.objects.filter(user=patient, type="REVIEW_REQUEST").exists()

    # COMPLETED → CONFIRMED is not a move: the row keeps its status.
    staff.post(url, {"date": tomorrow.isoformat(), "time": "09:00", "status": "CONFIRMED", "reason": ""})
    assert Appointment.objects.get(pk=appointment.pk).status == Status.COMPLETED


def test_rescheduling_in_the_change_form_notifies_both(staff, book, patient, doctor, tomorrow):
    appointment = book(patient=patient, doctor=doctor, time="09:00")

    staff.post(
        f"{CHANGELIST}{appointment.pk}/change/",
        {"date": tomorrow.isoformat(), "time": "11:00", "status": "CONFIRMED", "reason": ""},
    )

    assert Appointment.objects.get(pk=appointment.pk).time == datetime.time(11, 0)
    moved = Notification.objects.filter(type="APPOINTMENT_RESCHEDULED")
    assert sorted(n.user_id for n in moved) == sorted([patient.pk, doctor.user.pk])


def test_appointments_cannot_be_deleted_in_the_admin(staff, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)
    assert staff.post(f"{CHANGELIST}{appointment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Appointment.objects.filter(pk=appointment.pk).exists()


def test_a_refused_change_is_shown_next_to_its_field_and_changes_nothing(
    staff, book, patient, patient2, doctor, tomorrow
):
    held = book(patient=patient2, doctor=doctor, time="10:00")
    appointment = book(patient=patient, doctor=doctor, time="09:00")
    url = f"{CHANGELIST}{appointment.pk}/change/"

    taken = staff.post(url, {"date": tomorrow.isoformat(), "time": "10:00", "status": "CONFIRMED", "reason": ""})
    assert taken.status_code == 200
    assert "That time is already booked with this doctor." in taken.content.decode()

    staff.post(url, {"date": tomorrow.isoformat(), "time": "09:00", "status": "COMPLETED", "reason": ""})
    refused = staff.post(url, {"date": tomorrow.isoformat(), "time": "09:00", "status": "PENDING", "reason": ""})
    assert refused.status_code == 200
    assert "cannot move from COMPLETED to PENDING" in refused.content.decode()

    # An edit that moves nothing is still fine on a finished appointment.
    note = staff.post(url, {"date": tomorrow.isoformat(), "time": "09:00", "status": "COMPLETED", "reason": "x-ray"})
    assert note.status_code == 302
    appointment.refresh_from_db()
    assert (appointment.time, appointment.status, appointment.reason) == (datetime.time(9), Status.COMPLETED, "x-ray")
    held.refresh_from_db()
    assert held.time == datetime.time(10)


@pytest.mark.django_db(transaction=True)  # the action's own transaction commits, as in production
def test_an_action_over_a_days_rows_pushes_the_doctors_queue_once(staff, book, patient, patient2, doctor, today):
    todays = [book(patient=p, doctor=doctor, date=today, time=t) for p, t in ((patient, "09:00"), (patient2, "09:30"))]
    with mock.patch("core.outbox._deliver") as deliver:
        run_action(staff, "cancel", todays)

    queue_pushes = [
        m for call in deliver.call_args_list for group, m in call.args[0] if group == groups.queue_group(doctor.pk)
    ]
    # Once, and read by the watchers' server processes when told (so after both cancellations).
    assert queue_pushes == [
        {"type": groups.QUEUE_CHANGED, "doctor_id": doctor.pk, "group": groups.queue_group(doctor.pk)}
    ]
