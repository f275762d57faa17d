"""What running a queue costs in queries: exact numbers, so that one more query anywhere shows up here.

Inside a test every `transaction.atomic` is a savepoint (SAVEPOINT + RELEASE), which a real request
spends on BEGIN + COMMIT instead. The queue's state that `queue_updated` carries is read at commit
(its two queries come after the RELEASE)."""

import pytest

pytestmark = pytest.mark.django_db

CALL_NEXT = [
    "the JWT's user",
    "the doctor (with its user)",
    "SAVEPOINT (queue_call_next)",
    "the queue row, locked",
    "the next confirmed number",
    "UPDATE the queue row",
    # The queue's alerts: the front two (the one called, the first one waiting) with their patients,
    # the doctor's name and whether each was told before, in one query ...
    "the queue's front two",
    # ... and, when someone is to be told: claim the alerts, then store the notifications as every
    # change does (one INSERT, the event numbers with the unread counts, one INSERT for the events,
    # the users' Web Push subscriptions).
    "INSERT … ON CONFLICT DO NOTHING the alert rows",
    "INSERT the notifications",
    "reserve the patients' event numbers and count their unread notifications, in one upsert",
    "INSERT the events",
    "the two patients' Web Push subscriptions (none here: no messages, no wake-up)",
    "RELEASE SAVEPOINT",
    "the queue's state at commit: the day's appointments after the number",
    "the queue's state at commit: the doctor's measured minutes per patient",
]


@pytest.fixture
def running(api, book, patient, patient2, doctor, today):
    """Four of today's appointments; the doctor has called #1 already (the queue's row exists)."""
    for i in range(4):
        book(patient=(patient, patient2)[i % 2], doctor=doctor, date=today, time=f"1{i}:00", actor=doctor)
    client = api(doctor)
    assert client.post(f"/api/queues/{doctor.pk}/next/").status_code == 200
    return client


def test_calling_next_with_two_patients_to_tell(running, doctor, django_assert_num_queries):
    with django_assert_num_queries(len(CALL_NEXT)):
        response = running.post(f"/api/queues/{doctor.pk}/next/")
    assert response.json()["current_queue"] == 2


def test_setting_a_number_nobody_is_to_be_told_of_costs_one_query_for_the_alerts(
    running, doctor, django_assert_num_queries
):
    # the user, the doctor, SAVEPOINT, the row locked, UPDATE, the queue's front two (told already),
    # RELEASE, the state at commit (two)
    with django_assert_num_queries(9):
        response = running.post(f"/api/queues/{doctor.pk}/", {"current_queue": 1}, format="json")
    assert response.json()["current_queue"] == 1
