"""Bookings that race: real threads, each with its own client and database connection, released together."""

import datetime
import threading

import pytest
from django.db import connection

from accounts.tests.factories import UserFactory
from appointments.models import Appointment, Status
from notifications.models import Event, Notification
from tests.support import bearer_client, released_together

pytestmark = pytest.mark.django_db(transaction=True)

JOIN_TIMEOUT = 60


def race(count: int, request_for):
    """Run `request_for(i)` → (client, path, body, headers) in `count` threads, their POSTs released at once.

    Each thread builds its own APIClient before the barrier. Returns [(status_code, json)] in thread order.
    """

    def ready(i):
        client, path, body, headers = request_for(i)

        def post():
            response = client.post(path, body, format="json", **headers)
            return response.status_code, response.json()

        return post

    return released_together(count, ready, timeout=JOIN_TIMEOUT)


def test_twenty_concurrent_bookings_get_queue_numbers_1_to_20(doctor, patient, patient2, tomorrow):
    patients = [patient, patient2, *UserFactory.create_batch(8)]
    start = datetime.datetime.combine(tomorrow, datetime.time(8, 0))

    def request_for(i):
        body = {
            "doctor": doctor.pk,
            "date": tomorrow.isoformat(),
            "time": (start + datetime.timedelta(minutes=10 * i)).strftime("%H:%M"),
        }
        return bearer_client(patients[i % len(patients)]), "/api/appointments/", body, {}

    results = race(20, request_for)

    assert [code for code, _ in results] == [201] * 20
    assert sorted(body["queue_number"] for _, body in results) == list(range(1, 21))
    stored = Appointment.objects.filter(doctor=doctor, date=tomorrow)
    assert sorted(stored.values_list("queue_number", flat=True)) == list(range(1, 21))
    assert set(stored.values_list("status", flat=True)) == {Status.CONFIRMED}
    # The doctor's stream took 40 events (a notification and an update per booking) without a gap.
    assert list(Event.objects.filter(user=doctor.user).order_by("seq").values_list("seq", flat=True)) == list(
        range(1, 41)
    )
    assert Notification.objects.filter(user=doctor.user, type="APPOINTMENT_BOOKED").count() == 20


def test_a_reader_never_sees_a_hole_in_a_stream_while_bookings_race(doctor, tomorrow):
    """A later seq of a user commits after an earlier one: every snapshot taken during the race is 1..k."""
    patients = UserFactory.create_batch(10)
    stop = threading.Event()
    snapshots: list[list[int]] = []
    errors: list = []

    def watch() -> None:
        try:
            while not stop.is_set():
                snapshots.append(sorted(Event.objects.filter(user=doctor.user).values_list("seq", flat=True)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def request_for(i):
        body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": f"{8 + i // 4:02d}:{15 * (i % 4):02d}"}
        return bearer_client(patients[i % len(patients)]), "/api/appointments/", body, {}

    watcher = threading.Thread(target=watch, name="stream-watcher")
    watcher.start()
    try:
        results = race(20, request_for)
    finally:
        stop.set()
        watcher.join(JOIN_TIMEOUT)

    assert errors == []
    assert [code for code, _ in results] == [201] * 20
    assert len(snapshots) > 1
    assert [s for s in snapshots if s != list(range(1, len(s) + 1))] == []
    assert sorted(Event.objects.filter(user=doctor.user).values_list("seq", flat=True)) == list(range(1, 41))


def test_twenty_concurrent_bookings_by_one_patient(doctor, patient, tomorrow, settings):
    settings.BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY = 20  # the one patient's event numbers are what races here

    def request_for(i):
        body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": f"{8 + i // 4:02d}:{15 * (i % 4):02d}"}
        return bearer_client(patient), "/api/appointments/", body, {}

    results = race(20, request_for)

    assert [code for code, _ in results] == [201] * 20
    assert sorted(body["queue_number"] for _, body in results) == list(range(1, 21))
    seqs = list(Event.objects.filter(user=patient).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 41))


def test_concurrent_bookings_by_one_patient_stop_at_the_daily_limit(doctor, patient, tomorrow, settings):
    settings.BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY = 2

    def request_for(i):
        body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": f"09:{15 * i:02d}"}
        return bearer_client(patient), "/api/appointments/", body, {}

    results = race(4, request_for)

    assert sorted(code for code, _ in results) == [201, 201, 409, 409]
    assert Appointment.objects.filter(patient=patient, doctor=doctor, date=tomorrow).count() == 2


def test_ten_concurrent_bookings_of_one_slot_one_wins(doctor, tomorrow):
    patients = UserFactory.create_batch(10)

    def request_for(i):
        body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}
        return bearer_client(patients[i]), "/api/appointments/", body, {}

    results = race(10, request_for)

    codes = sorted(code for code, _ in results)
    assert codes == [201] + [409] * 9
    winner = next(body for code, body in results if code == 201)
    stored = Appointment.objects.get(doctor=doctor, date=tomorrow)
    assert (stored.pk, stored.queue_number, stored.patient_id) == (winner["id"], 1, winner["patient"])
    # Only the winner and the doctor were told anything.
    assert set(Notification.objects.values_list("user_id", flat=True)) == {winner["patient"], doctor.user.pk}


def test_two_racing_requests_with_one_idempotency_key_book_once(doctor, patient, tomorrow):
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00", "reason": "follow-up"}

    def request_for(i):
        return bearer_client(patient), "/api/appointments/", body, {"HTTP_IDEMPOTENCY_KEY": "one-tap"}

    (first_code, first), (second_code, second) = race(2, request_for)

    assert (first_code, second_code) == (201, 201)
    assert first == second
    assert Appointment.objects.count() == 1
    assert Appointment.objects.get().pk == first["id"]
    assert Notification.objects.count() == 2
