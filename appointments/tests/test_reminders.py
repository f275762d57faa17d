"""Reminders with the clock under control (time-machine): planned, re-planned, dropped, sent once.

The worker is django-tasks-db's own `db_worker`, run in batch mode (it takes every task whose time
has come, then exits), so each test also shows that a wake-up was queued for the right moment.
"""

import datetime
import threading

import pytest
import time_machine
from django.db import connection, connections
from django.utils import timezone

from appointments.models import Reminder, Wakeup
from appointments.reminders import SWEEP, reminders_send_due
from appointments.services import appointment_reschedule, appointment_transition
from appointments.tests.factories import AppointmentFactory
from core.leases import claim_due
from notifications.models import Event, Notification
from tests.support import hhmm
from tests.support.worker import run_worker

# The clinic's time zone (TIME_ZONE): not overridden here, which would reset the process's TZ.
CLINIC_TZ = timezone.get_default_timezone()
NOW = datetime.datetime(2030, 3, 1, 10, 0, tzinfo=CLINIC_TZ)
DAY = datetime.date(2030, 3, 3)  # the appointment, at 09:00 Dhaka time


@pytest.fixture(autouse=True)
def _offsets(settings):
    settings.REMINDER_OFFSETS = [24 * 3600, 2 * 3600]
    settings.TASK_LEASE_SECONDS = 30


@pytest.fixture
def clock(db):
    with time_machine.travel(NOW, tick=False) as traveller:
        run_worker(starting=True)  # a worker is up before anything is booked
        yield traveller


def at(clock, when: datetime.datetime) -> None:
    clock.move_to(when)


def reminders_of(user):
    return list(Notification.objects.filter(user=user, type="APPOINTMENT_REMINDER"))


@pytest.fixture
def appointment(clock, book, patient, doctor):
    return book(patient=patient, doctor=doctor, date=DAY, time="09:00", reason="chest pain, private")


def test_booking_plans_one_reminder_per_offset_in_the_clinic_time_zone(appointment):
    rows = {r.offset_seconds: r for r in appointment.reminders.all()}
    assert set(rows) == {86400, 7200}
    assert rows[86400].due_at == datetime.datetime(2030, 3, 2, 9, 0, tzinfo=CLINIC_TZ)
    assert rows[7200].due_at == datetime.datetime(2030, 3, 3, 7, 0, tzinfo=CLINIC_TZ)
    assert {r.state for r in rows.values()} == {"PLANNED"}


def test_an_offset_already_past_at_booking_is_skipped(clock, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor, date=NOW.date(), time="14:00")
    states = dict(appointment.reminders.values_list("offset_seconds", "state"))
    assert states == {86400: "SKIPPED", 7200: "PLANNED"}
    at(clock, datetime.datetime(2030, 3, 1, 12, 0, tzinfo=CLINIC_TZ))
    run_worker()
    assert len(reminders_of(patient)) == 1


def test_not_before_its_time_then_once_with_its_notification_pushed(clock, appointment, patient):
    at(clock, datetime.datetime(2030, 3, 2, 8, 59, 59, tzinfo=CLINIC_TZ))
    run_worker()
    assert reminders_of(patient) == []

    at(clock, datetime.datetime(2030, 3, 2, 9, 0, tzinfo=CLINIC_TZ))
    run_worker()
    run_worker()
    [reminder] = reminders_of(patient)
    assert reminder.title == "Appointment Reminder"
    assert reminder.related_id == appointment.pk and reminder.related_type == "Appointment"
    assert "Dr. Doc" in reminder.message and "2030-03-03" in reminder.message and "09:00" in reminder.message
    assert "chest" not in reminder.message
    # stored in the patient's stream like every notification: a socket gets it live or on resume
    event = Event.objects.filter(user=patient, type="new_notification").order_by("seq").last()
    assert event.data["id"] == reminder.pk and event.data["type"] == "APPOINTMENT_REMINDER"

    at(clock, datetime.datetime(2030, 3, 3, 7, 0, 30, tzinfo=CLINIC_TZ))
    run_worker()
    assert len(reminders_of(patient)) == 2
    assert set(appointment.reminders.values_list("state", flat=True)) == {"SENT"}


def test_the_text_is_in_the_patients_language(clock, book, patient, doctor):
    patient.language = "bn"
    patient.save()
    book(patient=patient, doctor=doctor, date=DAY, time="09:00")
    at(clock, datetime.datetime(2030, 3, 2, 9, 0, tzinfo=CLINIC_TZ))
    run_worker()
    [reminder] = reminders_of(patient)
    assert reminder.title == "অ্যাপয়েন্টমেন্ট অনুস্মারক"
    assert "অনুস্মারক" in reminder.message


def test_a_reschedule_replans_and_a_sent_reminder_is_not_sent_again(clock, appointment, patient):
    at(clock, datetime.datetime(2030, 3, 2, 9, 0, tzinfo=CLINIC_TZ))
    run_worker()
    assert len(reminders_of(patient)) == 1  # the 24 h one

    appointment_reschedule(actor=patient, appointment=appointment, date=datetime.date(2030, 3, 5), time=hhmm("16:00"))
    rows = dict(appointment.reminders.values_list("offset_seconds", "due_at"))
    assert rows[7200] == datetime.datetime(2030, 3, 5, 14, 0, tzinfo=CLINIC_TZ)

    at(clock, datetime.datetime(2030, 3, 3, 7, 0, tzinfo=CLINIC_TZ))  # the old 2 h time: nothing
    run_worker()
    assert len(reminders_of(patient)) == 1
    at(clock, datetime.datetime(2030, 3, 5, 14, 0, tzinfo=CLINIC_TZ))
    run_worker()
    assert len(reminders_of(patient)) == 2  # the 2 h one, at the new time; the 24 h one went once


def test_a_reschedule_plans_an_offset_that_was_past_for_the_old_time(clock, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor, date=NOW.date(), time="14:00")
    appointment_reschedule(actor=patient, appointment=appointment, date=DAY, time=hhmm("09:00"))
    assert set(appointment.reminders.values_list("state", flat=True)) == {"PLANNED"}


@pytest.mark.parametrize("status", ["CANCELLED", "COMPLETED", "NO_SHOW"])
def test_an_appointment_no_longer_active_drops_its_reminders(clock, appointment, patient, doctor, status):
    actor = patient if status == "CANCELLED" else doctor.user
    appointment_transition(actor=actor, appointment=appointment, to_status=status)
    assert set(appointment.reminders.values_list("state", flat=True)) == {"DROPPED"}
    at(clock, datetime.datetime(2030, 3, 3, 7, 0, tzinfo=CLINIC_TZ))
    run_worker()
    assert reminders_of(patient) == []


def test_a_worker_down_past_the_start_skips_instead_of_sending_late(clock, appointment, patient):
    at(clock, datetime.datetime(2030, 3, 3, 9, 0, tzinfo=CLINIC_TZ))
    run_worker()
    assert reminders_of(patient) == []
    assert set(appointment.reminders.values_list("state", flat=True)) == {"SKIPPED"}


def test_a_worker_killed_after_its_claim_leaves_the_reminder_to_another_after_the_lease(clock, appointment, patient):
    due = datetime.datetime(2030, 3, 2, 9, 0, tzinfo=CLINIC_TZ)
    at(clock, due)
    # A worker claims the due reminder, then dies before sending it (its claim is all it did).
    dead_token, [claimed] = claim_due(
        Reminder.objects.filter(state="PLANNED", due_at__lte=due), now=due, on_claimed=_wake_at
    )
    run_worker()  # within the lease: nobody else takes it
    assert reminders_of(patient) == []

    at(clock, due + datetime.timedelta(seconds=31))
    run_worker()  # the wake-up queued with the claim: the lease is over, another worker sends it
    assert len(reminders_of(patient)) == 1

    # The "dead" worker was only slow: it comes back and finds its claim gone.
    from appointments.reminders import _send_one

    assert _send_one(claimed, dead_token) is False
    run_worker()
    assert len(reminders_of(patient)) == 1
    assert Reminder.objects.get(pk=claimed).state == "SENT"


def _wake_at(lease_end):
    from appointments.reminders import wake

    wake(lease_end)


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_reminder_once(patient, doctor, settings):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent claims need PostgreSQL (SQLite serialises every write)")
    settings.REMINDER_OFFSETS = []
    tomorrow = datetime.date.today() + datetime.timedelta(days=2)
    appointments = AppointmentFactory.create_batch(50, patient=patient, doctor=doctor, date=tomorrow)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    Reminder.objects.bulk_create(
        Reminder(appointment=a, offset_seconds=offset, due_at=past) for a in appointments for offset in (60, 120)
    )
    start = threading.Barrier(2)
    sent = []

    def worker():
        try:
            start.wait(timeout=10)
            sent.append(reminders_send_due(limit=7))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(sent) == 100
    assert Notification.objects.filter(user=patient, type="APPOINTMENT_REMINDER").count() == 100
    assert Reminder.objects.filter(state="SENT").count() == 100
    assert Reminder.objects.exclude(notification=None).values("notification").distinct().count() == 100


def test_a_reminder_due_before_the_next_sweep_wakes_the_worker_itself(clock, book, patient, doctor):
    """Booked 2 h 5 min ahead: its 2 h reminder is due in 5 minutes, before the sweep queued at start."""
    soon = NOW + datetime.timedelta(hours=2, minutes=5)
    book(patient=patient, doctor=doctor, date=soon.date(), time=soon.strftime("%H:%M"))
    at(clock, NOW + datetime.timedelta(minutes=5))
    run_worker()
    assert len(reminders_of(patient)) == 1


def test_a_reminder_days_ahead_is_sent_at_its_time_by_the_sweeps_chain(clock, book, patient, doctor):
    """No wake-up of its own: each sweep queues the next, the last one at the reminder's exact time."""
    book(patient=patient, doctor=doctor, date=DAY, time="09:00")
    due = datetime.datetime(2030, 3, 2, 9, 0, tzinfo=CLINIC_TZ)
    moment = NOW
    while moment + SWEEP < due:  # a worker that runs what comes due, sweep after sweep
        moment += SWEEP
        at(clock, moment)
        run_worker()
    assert reminders_of(patient) == []
    at(clock, due)
    run_worker()
    assert len(reminders_of(patient)) == 1


def test_workers_started_again_and_again_keep_one_sweep_queued(clock):
    """Each start queues a run; a run finds the next sweep queued already and queues none: one chain."""
    run_worker(starting=True)
    run_worker(starting=True)
    at(clock, NOW + SWEEP)
    run_worker()
    assert list(Wakeup.objects.values_list("at", flat=True)) == [NOW + 2 * SWEEP]
