"""A doctor's queue over REST: who may watch it, who may run it, and what it shows."""

import pytest

from appointments.models import Appointment, Status
from queues.models import QueueDay
from queues.services import DEFAULT_MINUTES_PER_PATIENT
from tests.support import QUEUE_KEYS

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_(request, api):
    return lambda name: api(request.getfixturevalue(name))


@pytest.fixture
def todays(book, patient, patient2, doctor, today):
    """Four of today's appointments with `doctor`: #1, #3 for patient, #2, #4 for patient2."""
    return [
        book(patient=(patient, patient2)[i % 2], doctor=doctor, date=today, time=f"1{i}:00", actor=doctor)
        for i in range(4)
    ]


def set_status(appointment, status):
    Appointment.objects.filter(pk=appointment.pk).update(status=status)


@pytest.mark.parametrize("viewer", ["doctor", "admin_user", "patient"])
def test_the_doctor_staff_and_a_patient_in_the_queue_see_it(as_, todays, doctor, today, viewer):
    response = as_(viewer).get(f"/api/queues/{doctor.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "doctor_id": doctor.pk,
        "date": today.isoformat(),
        "current_queue": 0,
        "estimated_wait": DEFAULT_MINUTES_PER_PATIENT,
        "waiting": 4,
        "waiting_numbers": [1, 2, 3, 4],
    }


def test_reading_a_queue_writes_nothing(as_, todays, doctor, today):
    """A day nobody has served yet reads as number 0 and stays without a row until its doctor moves it."""
    assert as_("patient").get(f"/api/queues/{doctor.pk}/").json()["current_queue"] == 0
    assert not QueueDay.objects.filter(doctor=doctor, date=today).exists()

    as_("doctor").post(f"/api/queues/{doctor.pk}/", {"current_queue": 2}, format="json")
    assert as_("patient").get(f"/api/queues/{doctor.pk}/").json()["current_queue"] == 2
    assert QueueDay.objects.get(doctor=doctor, date=today).current_queue == 2


def test_a_pending_appointment_also_lets_the_patient_watch(as_, book, patient, doctor, tomorrow):
    appointment = book(patient=patient, doctor=doctor, date=tomorrow)
    set_status(appointment, Status.PENDING)
    assert as_("patient").get(f"/api/queues/{doctor.pk}/").status_code == 200


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW])
def test_a_patient_without_an_active_appointment_gets_404(as_, book, patient, doctor, status):
    set_status(book(patient=patient, doctor=doctor), status)
    assert as_("patient").get(f"/api/queues/{doctor.pk}/").status_code == 404


@pytest.mark.parametrize("viewer", ["patient", "doctor2"])
def test_anyone_else_gets_404(as_, book, patient, doctor, doctor2, viewer):
    book(patient=patient, doctor=doctor2)  # active, but with another doctor
    assert as_(viewer).get(f"/api/queues/{doctor.pk}/").status_code == 404


def test_an_unknown_doctor_is_404(as_, admin_user, doctor):
    assert as_("admin_user").get(f"/api/queues/{doctor.pk + 999}/").status_code == 404
    assert as_("admin_user").post(f"/api/queues/{doctor.pk + 999}/", {"current_queue": 1}).status_code == 404
    assert as_("admin_user").post(f"/api/queues/{doctor.pk + 999}/next/").status_code == 404


@pytest.mark.parametrize("runner", ["doctor", "admin_user"])
def test_the_doctor_or_staff_set_the_queue(as_, todays, doctor, today, runner):
    response = as_(runner).post(f"/api/queues/{doctor.pk}/", {"current_queue": 2, "estimated_wait": 7}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "doctor_id": doctor.pk,
        "date": today.isoformat(),
        "current_queue": 2,
        "estimated_wait": 7,
        "waiting": 2,
        "waiting_numbers": [3, 4],
    }
    assert QueueDay.objects.get(doctor=doctor, date=today).current_queue == 2
    assert as_("patient").get(f"/api/queues/{doctor.pk}/").json()["current_queue"] == 2


def test_setting_only_the_number_keeps_the_estimate(as_, doctor):
    client = as_("doctor")
    client.post(f"/api/queues/{doctor.pk}/", {"current_queue": 1, "estimated_wait": 9}, format="json")
    body = client.post(f"/api/queues/{doctor.pk}/", {"current_queue": 2}, format="json").json()
    assert (body["current_queue"], body["estimated_wait"]) == (2, 9)


@pytest.mark.parametrize("runner", ["patient", "doctor2"])
def test_others_may_not_run_the_queue(as_, todays, doctor, runner):
    client = as_(runner)
    assert client.post(f"/api/queues/{doctor.pk}/", {"current_queue": 3}, format="json").status_code == 403
    assert client.post(f"/api/queues/{doctor.pk}/next/").status_code == 403
    assert not QueueDay.objects.filter(doctor=doctor, current_queue__gt=0).exists()


@pytest.mark.parametrize("body", [{"current_queue": -1}, {"current_queue": "x"}, {}])
def test_others_are_refused_before_their_input_is_read(as_, todays, doctor, body):
    assert as_("patient").post(f"/api/queues/{doctor.pk}/", body, format="json").status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"current_queue": -1}, "current_queue"),
        ({"current_queue": "x"}, "current_queue"),
        ({}, "current_queue"),
        ({"current_queue": 1, "estimated_wait": -5}, "estimated_wait"),
        ({"current_queue": 1, "estimated_wait": "soon"}, "estimated_wait"),
    ],
)
def test_bad_queue_input_is_400_keyed_by_field(as_, doctor, body, field):
    response = as_("doctor").post(f"/api/queues/{doctor.pk}/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not QueueDay.objects.filter(doctor=doctor, current_queue__gt=0).exists()


def test_next_moves_to_the_next_confirmed_number(as_, todays, doctor):
    set_status(todays[0], Status.COMPLETED)
    set_status(todays[1], Status.CANCELLED)
    set_status(todays[2], Status.NO_SHOW)
    client = as_("doctor")

    response = client.post(f"/api/queues/{doctor.pk}/next/")

    assert response.status_code == 200
    assert set(response.json()) == QUEUE_KEYS
    assert (response.json()["current_queue"], response.json()["waiting"], response.json()["waiting_numbers"]) == (
        4,
        0,
        [],
    )
    # Nothing left waiting.
    done = client.post(f"/api/queues/{doctor.pk}/next/")
    assert done.status_code == 400
    assert client.get(f"/api/queues/{doctor.pk}/").json()["current_queue"] == 4


def test_waiting_numbers_are_the_still_active_ones_after_the_current_number(as_, todays, book, patient, doctor, today):
    late = book(patient=patient, doctor=doctor, date=today, time="15:00", actor=doctor)  # #5
    set_status(todays[1], Status.CANCELLED)  # #2
    set_status(todays[2], Status.NO_SHOW)  # #3
    set_status(late, Status.PENDING)  # #5 still counts: pending is active
    client = as_("doctor")

    assert client.get(f"/api/queues/{doctor.pk}/").json()["waiting_numbers"] == [1, 4, 5]
    body = client.post(f"/api/queues/{doctor.pk}/", {"current_queue": 1}, format="json").json()
    assert body["waiting_numbers"] == [4, 5]
    # A patient holding #5 has one person ahead of them: #4 (#2 and #3 no longer wait).
    assert len([n for n in body["waiting_numbers"] if n < late.queue_number]) == 1
    assert as_("patient").get(f"/api/queues/{doctor.pk}/").json()["waiting_numbers"] == [4, 5]


def test_next_with_an_empty_day_is_400(as_, doctor):
    assert as_("admin_user").post(f"/api/queues/{doctor.pk}/next/").status_code == 400


def test_next_by_staff_walks_the_queue(as_, todays, doctor):
    client = as_("admin_user")
    numbers = [client.post(f"/api/queues/{doctor.pk}/next/").json()["current_queue"] for _ in range(4)]
    assert numbers == [1, 2, 3, 4]


@pytest.mark.django_db(transaction=True)
def test_moving_an_appointment_away_from_today_updates_todays_queue(api, book, patient, doctor, today, tomorrow):
    from unittest import mock

    from core.groups import QUEUE_CHANGED, queue_group

    appointment = book(patient=patient, doctor=doctor, date=today, time="09:00")
    with mock.patch("core.outbox._deliver") as deliver:
        response = api(patient).patch(
            f"/api/appointments/{appointment.pk}/", {"date": tomorrow.isoformat()}, format="json"
        )
    assert response.status_code == 200
    sent = [message for call in deliver.call_args_list for message in call.args[0]]
    told = [message["type"] for group, message in sent if group == queue_group(doctor.pk)]
    assert told == [QUEUE_CHANGED], "today's queue watchers were not told"
