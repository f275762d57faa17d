"""The queue services: setting the number and the estimate, calling the next patient, what a snapshot counts."""

import datetime

import pytest
from django.utils import timezone

from appointments.models import Appointment, Status
from core.errors import InvalidInput, NotAllowed
from queues import services as queue_services
from queues.models import QueueDay
from queues.services import UNSET, queue_call_next, queue_snapshot, queue_update

pytestmark = pytest.mark.django_db

P, D, X, N = Status.PENDING, Status.COMPLETED, Status.CANCELLED, Status.NO_SHOW


def set_status(appointment: Appointment, status: str) -> Appointment:
    """Put an appointment in a state for the test, without the service (no notifications)."""
    Appointment.objects.filter(pk=appointment.pk).update(status=status)
    appointment.refresh_from_db()
    return appointment


@pytest.fixture
def todays_queue(book, patient, patient2, doctor, today):
    """Five of today's appointments with the doctor, numbered 1..5."""
    return [
        book(patient=(patient, patient2)[i % 2], doctor=doctor, date=today, time=f"{9 + i:02d}:00", actor=doctor)
        for i in range(5)
    ]


def test_queue_update_sets_the_number_and_the_estimate(doctor, today):
    row = queue_update(actor=doctor.user, doctor=doctor, current_queue=3, estimated_wait=12)

    assert (row.date, row.current_queue, row.estimated_wait) == (today, 3, 12)
    assert QueueDay.objects.get(doctor=doctor, date=today).current_queue == 3
    # Leaving the estimate out keeps it; None hands it back to the measured one.
    assert queue_update(actor=doctor.user, doctor=doctor, current_queue=4).estimated_wait == 12
    assert queue_update(actor=doctor.user, doctor=doctor, current_queue=4, estimated_wait=None).estimated_wait is None
    assert QueueDay.objects.filter(doctor=doctor).count() == 1


def test_queue_update_by_staff_and_refusals(admin_user, patient, doctor, doctor2):
    assert queue_update(actor=admin_user, doctor=doctor, current_queue=2).current_queue == 2
    for outsider in (patient, doctor2.user):
        with pytest.raises(NotAllowed):
            queue_update(actor=outsider, doctor=doctor, current_queue=5)
    with pytest.raises(InvalidInput) as refused:
        queue_update(actor=doctor.user, doctor=doctor, current_queue=-1)
    assert refused.value.field == "current_queue"
    assert QueueDay.objects.get(doctor=doctor).current_queue == 2


def test_call_next_skips_every_number_that_is_not_confirmed(todays_queue, doctor, admin_user):
    one, two, three, four, five = todays_queue
    set_status(two, X)
    set_status(three, N)
    set_status(four, P)

    assert queue_call_next(actor=doctor.user, doctor=doctor).current_queue == 1
    assert queue_call_next(actor=admin_user, doctor=doctor).current_queue == 5
    with pytest.raises(InvalidInput):
        queue_call_next(actor=doctor.user, doctor=doctor)
    assert QueueDay.objects.get(doctor=doctor).current_queue == 5


def test_call_next_ignores_other_days_and_other_doctors(book, patient, doctor, doctor2, today, tomorrow):
    book(patient=patient, doctor=doctor, date=tomorrow)
    book(patient=patient, doctor=doctor2, date=today)
    with pytest.raises(InvalidInput):
        queue_call_next(actor=doctor.user, doctor=doctor)


def test_call_next_is_for_the_doctor_and_staff_only(todays_queue, doctor, doctor2, patient):
    for outsider in (patient, doctor2.user):
        with pytest.raises(NotAllowed):
            queue_call_next(actor=outsider, doctor=doctor)


def test_waiting_counts_the_days_non_cancelled_appointments_behind_the_current_number(
    todays_queue, book, patient, doctor, doctor2, tomorrow
):
    set_status(todays_queue[2], X)  # #3
    book(patient=patient, doctor=doctor, date=tomorrow)  # another day
    book(patient=patient, doctor=doctor2, date=todays_queue[0].date)  # another doctor

    row = queue_update(actor=doctor.user, doctor=doctor, current_queue=1)

    snapshot = queue_snapshot(row)
    assert snapshot["waiting"] == 3  # 2, 4 and 5
    assert snapshot["current_queue"] == 1 and snapshot["doctor_id"] == doctor.pk
    assert snapshot["date"] == todays_queue[0].date.isoformat()


def _complete_at(appointment: Appointment, when: datetime.datetime) -> None:
    Appointment.objects.filter(pk=appointment.pk).update(status=D, completed_at=when)


def test_estimate_is_the_median_gap_between_completions_when_the_doctor_set_none(todays_queue, doctor, doctor2):
    start = timezone.now() - datetime.timedelta(hours=1)
    # Gaps of 4, 8 and 20 minutes → median 8.
    for appointment, minutes in zip(todays_queue[:4], [0, 4, 12, 32], strict=True):
        _complete_at(appointment, start + datetime.timedelta(minutes=minutes))

    row = queue_update(actor=doctor.user, doctor=doctor, current_queue=4)

    assert queue_snapshot(row)["estimated_wait"] == 8
    # Another doctor's completions are theirs alone: no measurements → the default.
    other = queue_update(actor=doctor2.user, doctor=doctor2, current_queue=0)
    assert queue_snapshot(other)["estimated_wait"] == queue_services.DEFAULT_MINUTES_PER_PATIENT


def test_estimate_ignores_breaks_longer_than_two_hours(todays_queue, doctor):
    start = timezone.now() - datetime.timedelta(hours=6)
    for appointment, minutes in zip(todays_queue[:3], [0, 200, 206], strict=True):
        _complete_at(appointment, start + datetime.timedelta(minutes=minutes))

    row = queue_update(actor=doctor.user, doctor=doctor, current_queue=3)

    assert queue_snapshot(row)["estimated_wait"] == 6


def test_an_explicit_estimate_wins_over_the_measured_one(todays_queue, doctor):
    start = timezone.now() - datetime.timedelta(hours=1)
    for appointment, minutes in zip(todays_queue[:3], [0, 4, 8], strict=True):
        _complete_at(appointment, start + datetime.timedelta(minutes=minutes))

    row = queue_update(actor=doctor.user, doctor=doctor, current_queue=3, estimated_wait=25)
    assert queue_snapshot(row)["estimated_wait"] == 25

    row = queue_update(actor=doctor.user, doctor=doctor, current_queue=3, estimated_wait=None)
    assert queue_snapshot(row)["estimated_wait"] == 4


def test_estimate_defaults_before_any_measurement(doctor):
    row = queue_update(actor=doctor.user, doctor=doctor, current_queue=0, estimated_wait=UNSET)
    assert queue_snapshot(row)["estimated_wait"] == queue_services.DEFAULT_MINUTES_PER_PATIENT
