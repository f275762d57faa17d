"""The queue's alerts (contract v1.2): "It's your turn" when the queue reaches a patient's number, "You're
next" when their appointment becomes the first one waiting; each once per appointment, only for a
CONFIRMED appointment of today, from every path that changes the queue or who is first in line."""

import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from appointments.models import Appointment, Status
from appointments.services import appointment_cancel, appointment_reschedule, appointment_transition
from notifications.models import Notification
from queues.models import QueueAlert
from queues.services import queue_alerts_send, queue_call_next, queue_update
from tests.support import hhmm

pytestmark = pytest.mark.django_db

REASON = "chest pain, private"
CALLED, NEXT = "QUEUE_CALLED", "QUEUE_NEXT"


def set_status(appointment: Appointment, status: str) -> None:
    """Put an appointment in a state for the test, without the service (no notifications, no alerts)."""
    Appointment.objects.filter(pk=appointment.pk).update(status=status)


def alerts() -> list[tuple[int, str, int]]:
    """Every queue alert stored, oldest first: (user id, type, appointment id)."""
    return list(
        Notification.objects.filter(type__in=[CALLED, NEXT]).order_by("id").values_list("user_id", "type", "related_id")
    )


@pytest.fixture
def queue(book, patient, patient2, doctor, today):
    """Five of today's appointments with the doctor, #1..#5, booked at the desk (earlier: no alert yet);
    #1, #3, #5 are `patient`'s, #2, #4 `patient2`'s."""
    return [
        book(
            patient=(patient, patient2)[i % 2],
            doctor=doctor,
            date=today,
            time=f"{9 + i:02d}:00",
            actor=doctor,
            reason=REASON,
        )
        for i in range(5)
    ]


def test_calling_next_tells_the_patient_called_and_the_one_after_them(queue, patient, patient2, doctor):
    one, two, *_ = queue
    queue_call_next(actor=doctor.user, doctor=doctor)

    assert alerts() == [(patient.pk, CALLED, one.pk), (patient2.pk, NEXT, two.pk)]
    called = Notification.objects.get(type=CALLED)
    assert (called.title, called.related_type) == ("It's your turn", "Appointment")
    assert "Dr. Doc" in called.message and "#1" in called.message
    warned = Notification.objects.get(type=NEXT)
    assert (warned.title, warned.related_type) == ("You're next", "Appointment")
    assert "Dr. Doc" in warned.message and "#2" in warned.message
    assert not any("chest" in n.message or "chest" in n.title for n in Notification.objects.all())


def test_each_alert_comes_once_however_the_doctor_moves_the_number(queue, patient, patient2, doctor):
    one, two, three, *_ = queue
    queue_call_next(actor=doctor.user, doctor=doctor)
    queue_call_next(actor=doctor.user, doctor=doctor)
    # Back to #1 and forward again, the same number twice, an estimate only: nobody is told again.
    for current in (1, 2, 2, 1, 2):
        queue_update(actor=doctor.user, doctor=doctor, current_queue=current)
    queue_update(actor=doctor.user, doctor=doctor, current_queue=2, estimated_wait=9)

    assert alerts() == [
        (patient.pk, CALLED, one.pk),
        (patient2.pk, NEXT, two.pk),
        (patient2.pk, CALLED, two.pk),
        (patient.pk, NEXT, three.pk),
    ]
    assert QueueAlert.objects.count() == 4


def test_a_patient_already_called_is_not_told_they_are_next(queue, doctor):
    one, two, *_ = queue
    queue_update(actor=doctor.user, doctor=doctor, current_queue=2)
    queue_update(actor=doctor.user, doctor=doctor, current_queue=1)  # back: #2 waits first again

    assert [(kind, appointment) for _, kind, appointment in alerts()] == [
        (CALLED, two.pk),
        (NEXT, queue[2].pk),
        (CALLED, one.pk),
    ]


def test_setting_the_number_over_rest_tells_them(api, queue, patient, patient2, doctor):
    response = api(doctor).post(f"/api/queues/{doctor.pk}/", {"current_queue": 3}, format="json")
    assert response.status_code == 200
    assert alerts() == [(patient.pk, CALLED, queue[2].pk), (patient2.pk, NEXT, queue[3].pk)]


def test_calling_next_over_rest_tells_them(api, queue, patient, patient2, doctor):
    response = api(doctor).post(f"/api/queues/{doctor.pk}/next/")
    assert response.status_code == 200 and response.json()["current_queue"] == 1
    assert alerts() == [(patient.pk, CALLED, queue[0].pk), (patient2.pk, NEXT, queue[1].pk)]


def test_staff_setting_the_number_in_the_admin_tells_them(staff, queue, patient, patient2, doctor, today):
    body = {"doctor": doctor.pk, "date": today.isoformat(), "current_queue": 1, "estimated_wait": ""}
    assert staff.post("/admin/queues/queueday/add/", body).status_code == 302
    assert alerts() == [(patient.pk, CALLED, queue[0].pk), (patient2.pk, NEXT, queue[1].pk)]


def test_a_refused_update_tells_nobody(api, queue, patient, doctor):
    assert api(patient).post(f"/api/queues/{doctor.pk}/", {"current_queue": 1}, format="json").status_code in (
        403,
        404,
    )
    assert api(doctor).post(f"/api/queues/{doctor.pk}/", {"current_queue": -1}, format="json").status_code == 400
    assert alerts() == []


def test_a_pending_appointment_is_not_told(queue, patient, doctor):
    one, two, three, *_ = queue
    set_status(one, Status.PENDING)
    set_status(two, Status.PENDING)
    queue_update(actor=doctor.user, doctor=doctor, current_queue=1)
    # #1 is called but pending, #2 (pending) waits first: nobody is told.
    assert alerts() == []

    queue_call_next(actor=doctor.user, doctor=doctor)  # skips to #3, the next confirmed one
    assert alerts() == [(patient.pk, CALLED, three.pk), (queue[3].patient_id, NEXT, queue[3].pk)]


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.NO_SHOW, Status.COMPLETED])
def test_an_appointment_that_is_over_is_not_told_and_the_one_after_it_is(queue, doctor, status):
    one, two, three, *_ = queue
    set_status(two, status)
    queue_update(actor=doctor.user, doctor=doctor, current_queue=1)
    assert [(kind, appointment) for _, kind, appointment in alerts()] == [(CALLED, one.pk), (NEXT, three.pk)]

    queue_update(actor=doctor.user, doctor=doctor, current_queue=2)  # a number nobody active holds
    assert [(kind, appointment) for _, kind, appointment in alerts()][2:] == []


def test_another_days_queue_tells_nobody(book, patient, doctor, tomorrow, admin_user):
    appointments = [
        book(patient=patient, doctor=doctor, date=tomorrow, time=t, actor=doctor) for t in ("09:00", "10:00")
    ]
    queue_update(actor=admin_user, doctor=doctor, date=tomorrow, current_queue=1)
    assert alerts() == []
    assert queue_alerts_send(doctor_id=doctor.pk, date=tomorrow, current_queue=1) == []
    assert appointments[0].queue_number == 1


def test_the_alerts_are_in_each_patients_language(queue, patient, patient2, doctor):
    patient2.language = "bn"
    patient2.save()
    queue_call_next(actor=doctor.user, doctor=doctor)
    warned = Notification.objects.get(type=NEXT)
    assert warned.user_id == patient2.pk
    assert warned.title == "এরপরই আপনার পালা"
    assert "Dr. Doc" in warned.message and "#2" in warned.message
    assert Notification.objects.get(type=CALLED).title == "It's your turn"

    queue_call_next(actor=doctor.user, doctor=doctor)
    assert Notification.objects.get(type=CALLED, user=patient2).title == "আপনার পালা এসেছে"


# Changes to appointments that put another one first in line: decided after the change commits.


@pytest.fixture
def serving_one(queue, doctor):
    """The doctor is at #1: #1 was called, #2 told they are next."""
    queue_call_next(actor=doctor.user, doctor=doctor)
    assert len(alerts()) == 2
    return queue


def new_alerts(before: int = 2) -> list[tuple[str, int]]:
    return [(kind, appointment) for _, kind, appointment in alerts()[before:]]


@pytest.mark.parametrize("who", ["patient", "doctor"])
def test_the_first_one_waiting_cancelled_the_next_is_told(serving_one, patient2, doctor, who, capture):
    two, three = serving_one[1], serving_one[2]
    with capture:
        appointment_cancel(actor={"patient": patient2, "doctor": doctor.user}[who], appointment=two)
    assert new_alerts() == [(NEXT, three.pk)]


def test_a_no_show_of_the_first_one_waiting_tells_the_next(serving_one, doctor, capture):
    with capture:
        appointment_transition(actor=doctor.user, appointment=serving_one[1], to_status=Status.NO_SHOW)
    assert new_alerts() == [(NEXT, serving_one[2].pk)]


def test_a_pending_first_one_confirmed_is_told(queue, doctor, capture):
    one, two, *_ = queue
    set_status(two, Status.PENDING)
    queue_call_next(actor=doctor.user, doctor=doctor)
    assert [(kind, appointment) for _, kind, appointment in alerts()] == [(CALLED, one.pk)]

    with capture:
        appointment_transition(actor=doctor.user, appointment=two, to_status=Status.CONFIRMED)
    assert new_alerts(1) == [(NEXT, two.pk)]


def test_a_first_one_rescheduled_to_another_day_the_next_is_told(serving_one, patient2, tomorrow, capture):
    two, three = serving_one[1], serving_one[2]
    with capture:
        appointment_reschedule(actor=patient2, appointment=two, date=tomorrow, time=hhmm("09:00"))
    assert new_alerts() == [(NEXT, three.pk)]


def test_a_reschedule_within_the_day_keeps_the_number_and_tells_nobody(serving_one, patient2, capture):
    with capture:
        appointment_reschedule(actor=patient2, appointment=serving_one[1], time=hhmm("16:30"))
    assert new_alerts() == []


def test_a_change_further_back_tells_nobody(serving_one, patient, doctor, capture):
    with capture:
        appointment_cancel(actor=patient, appointment=serving_one[4])
        appointment_transition(actor=doctor.user, appointment=serving_one[0], to_status=Status.COMPLETED)
    assert new_alerts() == []


def test_a_booking_before_the_queue_started_tells_nobody(book, patient, doctor, today, capture):
    """Nobody has run the doctor's queue today: the day's first booking is not "next" hours ahead."""
    with capture:
        book(patient=patient, doctor=doctor, date=today)
    assert alerts() == []


def test_a_booking_first_in_line_of_a_running_queue_is_told(book, patient, patient2, doctor, today, capture):
    served = book(patient=patient, doctor=doctor, date=today)
    queue_call_next(actor=doctor.user, doctor=doctor)  # nobody waits after #1
    with capture:
        walk_in = book(patient=patient2, doctor=doctor, date=today, time="10:00")
        book(patient=patient, doctor=doctor, date=today, time="11:00", actor=doctor)
    assert alerts() == [(patient.pk, CALLED, served.pk), (patient2.pk, NEXT, walk_in.pk)]


def test_a_booking_for_another_day_costs_no_query_for_alerts(book, patient, doctor, tomorrow, capture):
    with capture as callbacks:
        book(patient=patient, doctor=doctor, date=tomorrow)
    assert alerts() == []
    assert all("alerts" not in repr(callback) for callback in callbacks)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Runs what the changes inside leave for after their commit (the tests' transaction never commits)."""
    return django_capture_on_commit_callbacks(execute=True)


# "At most once" under concurrency: kept by the database (PostgreSQL; SQLite serialises every write).


def needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL (SQLite serialises every write); CI runs on it")


def in_threads(*functions, timeout: float = 60) -> list:
    """Run each function in a thread of its own (a database connection of its own); their results."""
    results: list = [None] * len(functions)
    errors: list = []

    def run(i, function):
        try:
            results[i] = function()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True)
def test_two_tabs_calling_next_at_once_tell_each_patient_once(queue, doctor):
    needs_postgresql()
    start = threading.Barrier(2)

    def call_next():
        start.wait(timeout=10)
        return queue_call_next(actor=doctor.user, doctor=doctor).current_queue

    assert sorted(in_threads(call_next, call_next)) == [1, 2]  # one after the other, on the queue row's lock
    assert [(kind, appointment) for _, kind, appointment in alerts()] == [
        (CALLED, queue[0].pk),
        (NEXT, queue[1].pk),
        (CALLED, queue[1].pk),
        (NEXT, queue[2].pk),
    ]


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_deciders_at_once_without_the_queue_lock_tell_each_patient_once(queue, doctor):
    """As two processes of different releases might during a rolling restart: both decide the same alerts
    in overlapping transactions. The second one's claim waits for the first's rows, then skips them."""
    needs_postgresql()
    queue_update(actor=doctor.user, doctor=doctor, current_queue=1)  # #1 called, #2 next
    assert len(alerts()) == 2
    claimed = threading.Event()

    def first():
        with transaction.atomic():
            told = queue_alerts_send(doctor_id=doctor.pk, date=timezone.localdate(), current_queue=2)
            claimed.set()
            deadline = time.monotonic() + 10
            while not _lock_waiters():  # hold the transaction open until the second one waits on it
                assert time.monotonic() < deadline, "the second decider never waited"
                time.sleep(0.01)
        return [n.type for n in told]

    def second():
        assert claimed.wait(timeout=10)
        with transaction.atomic():
            return [n.type for n in queue_alerts_send(doctor_id=doctor.pk, date=timezone.localdate(), current_queue=2)]

    assert in_threads(first, second) == [[CALLED, NEXT], []]
    assert Counter((kind, appointment) for _, kind, appointment in alerts()) == Counter(
        {(CALLED, queue[0].pk): 1, (NEXT, queue[1].pk): 1, (CALLED, queue[1].pk): 1, (NEXT, queue[2].pk): 1}
    )
    assert QueueAlert.objects.count() == 4
