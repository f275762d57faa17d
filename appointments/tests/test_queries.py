"""What requests cost in queries: exact numbers, so that one more query anywhere shows up here.

List endpoints cost the same however many rows they return."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import DoctorFactory
from appointments.models import Appointment
from appointments.tests.factories import AppointmentFactory
from notifications.models import Event, Notification
from notifications.tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

# The JWT's user, the page's COUNT(*), the page (with its related rows joined).
LIST_QUERIES = 3


def queries_for(client, path) -> tuple[int, int]:
    """(queries run, rows returned) for one GET of a whole list."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, {"page_size": 100})
    assert response.status_code == 200
    return len(captured), len(response.json()["results"])


def assert_flat_cost(client, path, add) -> None:
    """The list at `path` costs LIST_QUERIES with 3 rows and with 30; `add(n)` makes n more rows."""
    add(3)
    small, rows = queries_for(client, path)
    assert rows == 3

    add(27)
    large, rows = queries_for(client, path)

    assert rows == 30
    assert large == small == LIST_QUERIES


def test_appointment_list(api, admin_user):
    """Each appointment with its own patient and doctor, so no row can borrow another's lookups."""
    assert_flat_cost(api(admin_user), "/api/appointments/", AppointmentFactory.create_batch)


def test_appointment_list_for_a_doctor(api, doctor):
    assert_flat_cost(api(doctor), "/api/appointments/", lambda n: AppointmentFactory.create_batch(n, doctor=doctor))


def test_notification_list(api, patient):
    assert_flat_cost(api(patient), "/api/notifications/", lambda n: NotificationFactory.create_batch(n, user=patient))


def test_doctor_list(api, patient):
    assert_flat_cost(api(patient), "/api/doctors/", DoctorFactory.create_batch)


# Exact costs of the writes a client makes most. Inside a test every `transaction.atomic` is a
# savepoint (the test's own transaction is the outer one), so each service's transaction shows
# up here as SAVEPOINT + RELEASE SAVEPOINT: 2 of the counts below that a real request spends on
# BEGIN + COMMIT instead. SQLite and PostgreSQL run the same statements (SQLite ignores FOR UPDATE
# but still runs the query), so one number holds for both.


@pytest.fixture(autouse=True)
def _one_reminder(settings):
    """One reminder offset, an hour before: every booking here plans it (never already past)."""
    settings.REMINDER_OFFSETS = [3600]


BOOKING = [
    "the JWT's user",
    "SAVEPOINT (appointment_book)",
    "the doctor with its user, the doctor's row locked (read once: the serializer takes the id only)",
    "the slot's holder, the day's last queue number and the patient's active bookings that day"
    " (BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY), in one aggregate",
    "INSERT the appointment",
    "INSERT its audit-trail row (django-simple-history's post_save)",
    "INSERT both notifications",
    "reserve the patient's and the doctor's event numbers, and count their unread notifications for the"
    " `unread_count` of their new_notification events, in one upsert (RETURNING a subquery)",
    "INSERT the four events",
    "INSERT its reminder (one row per offset, one statement; due later than the worker's next sweep,"
    " it needs no wake-up of its own)",
    "the two users' Web Push subscriptions (none here: no messages, no wake-up)",
    "RELEASE SAVEPOINT",
]


def test_a_booking_costs_twelve_queries(api, patient, doctor, tomorrow, django_assert_num_queries):
    client = api(patient)
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}

    with django_assert_num_queries(len(BOOKING)):
        response = client.post("/api/appointments/", body, format="json")

    assert response.status_code == 201
    assert list(Event.objects.filter(user=patient).values_list("seq", flat=True)) == [1, 2]


def test_a_second_booking_costs_the_same(api, patient, doctor, tomorrow, django_assert_num_queries):
    """The sequence rows exist now: the upsert updates instead of inserting, in the same one statement."""
    client = api(patient)
    client.post("/api/appointments/", {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"})

    with django_assert_num_queries(len(BOOKING)):
        response = client.post(
            "/api/appointments/", {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:15"}
        )

    assert response.status_code == 201
    assert list(Event.objects.filter(user=patient).values_list("seq", flat=True)) == [1, 2, 3, 4]


def test_a_doctor_booking_for_a_patient_costs_one_more(api, patient, doctor, tomorrow, django_assert_num_queries):
    """The named patient (the serializer's look-up: an active patient, else a 400 on `patient`)."""
    client = api(doctor)
    body = {"doctor": doctor.pk, "patient": patient.pk, "date": tomorrow.isoformat(), "time": "09:00"}

    with django_assert_num_queries(len(BOOKING) + 1):
        response = client.post("/api/appointments/", body, format="json")

    assert response.status_code == 201
    assert response.json()["patient"] == patient.pk


def test_a_booking_with_an_idempotency_key(api, patient, doctor, tomorrow, django_assert_num_queries):
    client = api(patient)
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}
    # + SAVEPOINT, INSERT the key (in a savepoint of its own: SAVEPOINT, INSERT, RELEASE),
    #   UPDATE it with the response, RELEASE SAVEPOINT
    with django_assert_num_queries(len(BOOKING) + 6):
        response = client.post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 201

    # A replay: the user, SAVEPOINT, the INSERT that meets the key (SAVEPOINT, INSERT, ROLLBACK TO
    # SAVEPOINT, RELEASE SAVEPOINT), the stored record, RELEASE SAVEPOINT.
    with django_assert_num_queries(8):
        again = client.post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert again.status_code == 201 and again.json() == response.json()


@pytest.mark.parametrize(
    ("who", "status", "queries"),
    [
        # the user, the appointment (get_object), SAVEPOINT, the appointment again under its lock,
        # UPDATE, INSERT its audit-trail row, INSERT two notifications, reserve (counting the two
        # users' unread ones: unread_count), INSERT four events, "any other active appointment
        # with this doctor?" (queue revoke), RELEASE; + drop its reminders (UPDATE), INSERT the two
        # users' email deliveries and queue the worker (which asks presence whether they are needed);
        # + the users' Web Push subscriptions (none here)
        ("patient", "CANCELLED", 15),
        # the same with one notification, to the patient, which is not sent offline: + drop the reminders
        ("doctor", "COMPLETED", 13),
        # the same without the revoke check: the appointment stays active
        ("doctor", "CONFIRMED", 11),
    ],
)
def test_a_status_change(api, book, patient, doctor, who, status, queries, django_assert_num_queries):
    appointment = book(patient=patient, doctor=doctor)
    if status == "CONFIRMED":
        Appointment.objects.filter(pk=appointment.pk).update(status="PENDING")
    client = api({"patient": patient, "doctor": doctor}[who])

    with django_assert_num_queries(queries):
        response = client.patch(f"/api/appointments/{appointment.pk}/", {"status": status}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == status


def test_a_reschedule(api, book, patient, doctor, tomorrow, django_assert_num_queries):
    appointment = book(patient=patient, doctor=doctor)
    client = api(patient)
    # the user, the appointment (get_object), SAVEPOINT, the doctor's lock, the appointment under
    # its lock, the slot's holder and the day's last number in one aggregate, UPDATE, INSERT its
    # audit-trail row, INSERT two notifications, reserve (counting the two users' unread ones),
    # INSERT four events, RELEASE; + read its reminders, UPDATE them to the new time, INSERT the
    # two users' email deliveries and queue the worker (which asks presence whether they are needed),
    # the two users' Web Push subscriptions (none here)
    with django_assert_num_queries(17):
        response = client.patch(f"/api/appointments/{appointment.pk}/", {"time": "11:00"}, format="json")

    assert response.status_code == 200
    assert response.json()["time"] == "11:00"


def test_marking_one_notification_read(api, book, patient, doctor, django_assert_num_queries):
    book(patient=patient, doctor=doctor)
    notification = Notification.objects.get(user=patient)
    client = api(patient)
    # the user, SAVEPOINT, the notification, UPDATE, reserve (counting the unread ones left for
    # unread_count), INSERT the event, RELEASE
    with django_assert_num_queries(7):
        response = client.post(f"/api/notifications/{notification.pk}/read/")

    assert response.status_code == 200
    assert Event.objects.filter(user=patient).latest("seq").type == "notification_read"


def test_marking_all_notifications_read(api, book, patient, doctor, django_assert_num_queries):
    book(patient=patient, doctor=doctor)
    client = api(patient)
    # the user, SAVEPOINT, UPDATE, reserve, INSERT the event, RELEASE (unread_count is 0 after the
    # UPDATE: nothing to count)
    with django_assert_num_queries(6):
        response = client.post("/api/notifications/read-all/")

    assert response.json() == {"updated": 1}


def test_an_appointments_history_costs_the_same_however_long(api, book, patient, doctor, django_assert_num_queries):
    appointment = book(patient=patient, doctor=doctor)
    client = api(patient)
    path = f"/api/appointments/{appointment.pk}/history/"
    # the user, the appointment (get_object), its history rows with each one's user joined
    with django_assert_num_queries(3):
        assert len(client.get(path).json()) == 1

    for time in ("10:00", "11:00", "12:00"):
        client.patch(path.replace("history/", ""), {"time": time}, format="json")
    with django_assert_num_queries(3):
        assert len(client.get(path).json()) == 4
