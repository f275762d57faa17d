"""A push never holds up the request that made the change: a hung or failing layer costs at most
PUSH_TIMEOUT_SECONDS, and the change is stored either way."""

import asyncio
from unittest import mock

import pytest
from channels.layers import get_channel_layer

from appointments.models import Appointment
from core import groups, outbox

pytestmark = pytest.mark.django_db(transaction=True)


class HungLayer:
    """A channel layer whose Redis never answers: every send waits forever."""

    def __init__(self):
        self.started, self.cancelled = [], 0

    async def group_send(self, group, message):
        self.started.append(group)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def test_a_booking_with_the_layer_hung_is_answered_and_stored(api, patient, doctor, tomorrow, settings):
    settings.PUSH_TIMEOUT_SECONDS = 0.2
    layer = HungLayer()
    with mock.patch("core.outbox.get_channel_layer", return_value=layer):
        response = api(patient).post(
            "/api/appointments/", {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "10:00"}, format="json"
        )
    assert response.status_code == 201
    assert Appointment.objects.filter(pk=response.json()["id"], patient=patient).exists()
    assert layer.started == [groups.user_group(patient.pk)]  # the first send hung; the rest were dropped
    assert layer.cancelled == 1  # not left running against the hung layer


def test_a_failing_layer_loses_one_message_not_the_others(book, patient, doctor):
    real = get_channel_layer()
    original, sent = real.group_send, []

    async def group_send(group, message):
        if group == groups.user_group(patient.pk):
            raise ConnectionError("Redis went away")
        sent.append(group)
        await original(group, message)

    with mock.patch.object(real, "group_send", group_send):
        book(patient=patient, doctor=doctor)
    assert sent == [groups.user_group(doctor.user.pk)]  # the doctor still hears of the booking


def test_pushes_go_out_in_the_order_they_were_made_when_the_layer_is_healthy(book, patient, doctor):
    real = get_channel_layer()
    original, patient_seqs = real.group_send, []

    async def group_send(group, message):
        if group == groups.user_group(patient.pk):
            patient_seqs.extend(seq for seq, _frame in message["events"])
        await original(group, message)

    with mock.patch.object(real, "group_send", group_send):
        for slot in ("09:00", "09:15", "09:30"):
            book(patient=patient, doctor=doctor, time=slot, actor=doctor)  # three: beyond a patient's own limit
    assert len(patient_seqs) >= 3
    assert patient_seqs == list(range(patient_seqs[0], patient_seqs[0] + len(patient_seqs)))


def test_a_push_that_fails_in_an_unforeseen_way_fails_no_request(api, patient, doctor, tomorrow):
    """The change is committed before its push: whatever breaks in the push is logged, not answered."""
    with mock.patch.object(outbox, "_group_send_all", side_effect=RuntimeError("a bug in the push")):
        response = api(patient).post(
            "/api/appointments/", {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "10:00"}, format="json"
        )
    assert response.status_code == 201
    assert Appointment.objects.filter(pk=response.json()["id"], patient=patient).exists()
