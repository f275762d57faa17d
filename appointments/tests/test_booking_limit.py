"""A patient holds at most BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY active appointments with one doctor on one day."""

import datetime

import pytest

from appointments.models import Appointment, Status

pytestmark = pytest.mark.django_db

TIMES = ["09:00", "09:15", "09:30", "09:45"]


@pytest.fixture(autouse=True)
def _limit_of_two(settings):
    settings.BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY = 2


def post(client, doctor, date, time, **extra):
    return client.post(
        "/api/appointments/", {"doctor": doctor.pk, "date": date.isoformat(), "time": time, **extra}, format="json"
    )


def test_a_patient_cannot_take_a_third_slot_of_one_doctors_day(api, patient, doctor, tomorrow):
    client = api(patient)
    assert [post(client, doctor, tomorrow, t).status_code for t in TIMES[:2]] == [201, 201]

    refused = post(client, doctor, tomorrow, TIMES[2])

    assert refused.status_code == 409
    assert "2 active appointments with this doctor on that day" in refused.json()["date"][0]
    assert Appointment.objects.filter(patient=patient).count() == 2


def test_the_limit_counts_active_appointments_of_that_doctor_and_day_only(
    api, book, patient, doctor, doctor2, tomorrow
):
    first = book(patient=patient, doctor=doctor, time=TIMES[0])
    book(patient=patient, doctor=doctor, time=TIMES[1])
    client = api(patient)

    assert post(client, doctor2, tomorrow, TIMES[2]).status_code == 201  # another doctor
    assert post(client, doctor, tomorrow + datetime.timedelta(days=1), TIMES[2]).status_code == 201  # another day
    Appointment.objects.filter(pk=first.pk).update(status=Status.CANCELLED)
    assert post(client, doctor, tomorrow, TIMES[2]).status_code == 201  # a cancelled one frees its place


def test_a_doctor_or_staff_may_book_a_patient_beyond_the_limit(api, book, patient, doctor, admin_user, tomorrow):
    book(patient=patient, doctor=doctor, time=TIMES[0])
    book(patient=patient, doctor=doctor, time=TIMES[1])

    assert post(api(doctor), doctor, tomorrow, TIMES[2], patient=patient.pk).status_code == 201
    assert post(api(admin_user), doctor, tomorrow, TIMES[3], patient=patient.pk).status_code == 201


def test_rescheduling_into_a_full_day_is_409_and_within_the_day_is_fine(api, book, patient, doctor, tomorrow):
    later = tomorrow + datetime.timedelta(days=1)
    book(patient=patient, doctor=doctor, date=later, time=TIMES[0])
    book(patient=patient, doctor=doctor, date=later, time=TIMES[1])
    moving = book(patient=patient, doctor=doctor, time=TIMES[0])
    client = api(patient)

    refused = client.patch(
        f"/api/appointments/{moving.pk}/", {"date": later.isoformat(), "time": TIMES[2]}, format="json"
    )
    assert refused.status_code == 409 and "date" in refused.json()
    assert Appointment.objects.get(pk=moving.pk).date == tomorrow

    # A move within a full day keeps the count: the appointment does not count against itself.
    same_day = Appointment.objects.filter(date=later).first()
    moved = client.patch(f"/api/appointments/{same_day.pk}/", {"time": TIMES[3]}, format="json")
    assert moved.status_code == 200 and moved.json()["time"] == TIMES[3]
