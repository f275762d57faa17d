"""The doctors' optional morning digest (DOCTOR_DIGEST_AT), with the clock under control."""

import datetime

import pytest
import time_machine
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from appointments.digest import digest_schedule, send_doctor_digests
from appointments.services import appointment_cancel
from notifications.models import Notification
from tests.support.worker import run_worker

# The clinic's time zone (TIME_ZONE): not overridden here, which would reset the process's TZ.
CLINIC_TZ = timezone.get_default_timezone()
EVENING = datetime.datetime(2030, 3, 1, 20, 0, tzinfo=CLINIC_TZ)
DAY = datetime.date(2030, 3, 2)


def digests(user):
    return list(Notification.objects.filter(user=user, type="DOCTOR_DIGEST"))


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.REMINDER_OFFSETS = []
    settings.DOCTOR_DIGEST_AT = "07:30"


@pytest.fixture
def clock():
    with time_machine.travel(EVENING, tick=False) as traveller:
        yield traveller


def queued_digest_runs():
    return list(
        DBTaskResult.objects.filter(status="READY", task_path=send_doctor_digests.module_path).values_list(
            "run_after", flat=True
        )
    )


def test_off_by_default(settings, clock, db):
    settings.DOCTOR_DIGEST_AT = ""
    assert digest_schedule() is False
    assert queued_digest_runs() == []


def test_each_doctor_with_appointments_gets_one_digest_at_its_time(clock, book, patient, patient2, doctor, doctor2):
    book(patient=patient, doctor=doctor, date=DAY, time="11:00", reason="private")
    book(patient=patient2, doctor=doctor, date=DAY, time="09:15")
    cancelled = book(patient=patient2, doctor=doctor, date=DAY, time="08:00")
    appointment_cancel(actor=patient2, appointment=cancelled)
    digest_schedule()
    digest_schedule()  # a second worker starting: still one run queued
    assert queued_digest_runs() == [datetime.datetime(2030, 3, 2, 7, 30, tzinfo=CLINIC_TZ)]

    clock.move_to(datetime.datetime(2030, 3, 2, 7, 29, tzinfo=CLINIC_TZ))
    run_worker()
    assert digests(doctor.user) == []

    clock.move_to(datetime.datetime(2030, 3, 2, 7, 30, tzinfo=CLINIC_TZ))
    run_worker()
    [digest] = digests(doctor.user)
    assert digest.title == "Today's appointments"
    assert digest.message == "You have 2 appointment(s) today, the first at 09:15."
    assert digests(doctor2.user) == []  # nothing booked with them that day
    assert queued_digest_runs() == [datetime.datetime(2030, 3, 3, 7, 30, tzinfo=CLINIC_TZ)]

    send_doctor_digests.call(DAY.isoformat())  # run again (a second worker, a retry): no second digest
    assert len(digests(doctor.user)) == 1


def test_a_digest_the_worker_reaches_a_day_late_is_skipped(clock, book, patient, doctor):
    book(patient=patient, doctor=doctor, date=DAY, time="11:00")
    digest_schedule()
    clock.move_to(datetime.datetime(2030, 3, 3, 8, 0, tzinfo=CLINIC_TZ))
    run_worker()
    assert digests(doctor.user) == []
