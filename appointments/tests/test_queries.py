"""List endpoints cost the same number of queries however many rows they return."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import make_doctor, make_user
from appointments.models import Appointment
from notifications.models import Notification

pytestmark = pytest.mark.django_db


def queries_for(client, path) -> tuple[int, int]:
    """(queries run, rows returned) for one GET of a whole list."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, {"page_size": 100})
    assert response.status_code == 200
    return len(captured), len(response.json()["results"])


def add_appointments(count: int, tomorrow: datetime.date) -> None:
    """`count` appointments, each with its own patient and doctor, so no row can borrow another's lookups."""
    rows = []
    for _ in range(count):
        rows.append(
            Appointment(patient=make_user(), doctor=make_doctor(), date=tomorrow, time=datetime.time(9), queue_number=1)
        )
    Appointment.objects.bulk_create(rows)


def test_appointment_list(api, admin_user, tomorrow):
    client = api(admin_user)
    add_appointments(3, tomorrow)
    small, rows = queries_for(client, "/api/appointments/")
    assert rows == 3

    add_appointments(27, tomorrow)
    large, rows = queries_for(client, "/api/appointments/")

    assert rows == 30
    assert large == small


def test_appointment_list_for_a_doctor(api, doctor, tomorrow):
    client = api(doctor)

    def add(count):
        Appointment.objects.bulk_create(
            Appointment(patient=make_user(), doctor=doctor, date=tomorrow, time=datetime.time(8, i), queue_number=i + 1)
            for i in range(Appointment.objects.count(), Appointment.objects.count() + count)
        )

    add(3)
    small, _ = queries_for(client, "/api/appointments/")
    add(27)
    large, rows = queries_for(client, "/api/appointments/")

    assert rows == 30
    assert large == small


def test_notification_list(api, patient):
    client = api(patient)

    def add(count):
        Notification.objects.bulk_create(
            Notification(
                user=patient,
                type="APPOINTMENT_BOOKED",
                title="t",
                message="m",
                related_id=1,
                related_type="Appointment",
            )
            for _ in range(count)
        )

    add(3)
    small, rows = queries_for(client, "/api/notifications/")
    assert rows == 3
    add(27)
    large, rows = queries_for(client, "/api/notifications/")

    assert rows == 30
    assert large == small


def test_doctor_list(api, patient):
    client = api(patient)
    for _ in range(3):
        make_doctor()
    small, rows = queries_for(client, "/api/doctors/")
    assert rows == 3

    for _ in range(27):
        make_doctor()
    large, rows = queries_for(client, "/api/doctors/")

    assert rows == 30
    assert large == small
