"""Offline delivery when a server process is killed: real daphne processes on Redis, a real SIGKILL."""

import copy
import datetime
import json
import time
import uuid

import pytest
from django.conf import settings
from django.utils import timezone
from websockets.sync.client import connect

from accounts.tests.factories import PASSWORD
from notifications import presence
from notifications.models import Delivery
from tests.live import Daphne
from tests.support.worker import run_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    pytest.mark.skipif(not settings.REDIS_URL, reason="server processes share presence only through Redis"),
]


def wait_for(condition, timeout: float = 20, every: float = 0.2):
    """Poll `condition` until it holds (returns its value) or `timeout` seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)  # polling, bounded by the deadline
    pytest.fail(f"not within {timeout} s: {condition.__doc__}")


def test_a_cancellation_made_after_a_node_is_killed_reaches_its_patient_by_email(
    patient, doctor, mailoutbox, settings, monkeypatch
):
    # The nodes' presence under keys of this test's own, read by the worker this test runs in-process.
    prefix = f"mctest{uuid.uuid4().hex[:10]}"
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["prefix"] = prefix
    settings.CHANNEL_LAYERS = layers
    # Heartbeats every second, so that the worker decides within seconds; the TTL stays 60 s.
    monkeypatch.setattr(presence, "HEARTBEAT_SECONDS", 1)
    nodes = {"PRESENCE_HEARTBEAT_SECONDS": 1, "CHANNEL_LAYER_PREFIX": prefix}
    a, b = Daphne(**nodes), Daphne(**nodes)
    try:
        patient_token, doctor_token = a.token(patient.email, PASSWORD), a.token(doctor.user.email, PASSWORD)
        tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
        status, booked = a.request(
            "POST", "/api/appointments/", {"doctor": doctor.pk, "date": tomorrow, "time": "10:00"}, token=patient_token
        )
        assert status == 201, booked
        with (
            connect(f"{b.ws_url}?token={patient_token}", open_timeout=10) as patient_ws,
            connect(f"{a.ws_url}?token={doctor_token}", open_timeout=10) as doctor_ws,
        ):
            for ws in (patient_ws, doctor_ws):
                assert json.loads(ws.recv(timeout=10))["type"] == "ready"

            def both_online():
                """the patient (on B) and the doctor (on A) are announced"""
                return presence.backend().is_online(patient.pk) and presence.backend().is_online(doctor.user.pk)

            wait_for(both_online)

            b.kill()  # the patient's node dies without a goodbye: its entry stays for the TTL
            status, body = a.request(
                "PATCH", f"/api/appointments/{booked['id']}/", {"status": "CANCELLED"}, token=doctor_token
            )
            assert status == 200, body
            assert presence.backend().is_online(patient.pk)  # by the TTL alone the patient still counts

            def all_decided():
                """the cancellation's deliveries are sent or dropped as seen"""
                run_worker()
                pending = Delivery.objects.filter(notification__related_id=booked["id"], state="PENDING")
                return Delivery.objects.filter(notification__related_id=booked["id"]).exists() and not pending.exists()

            wait_for(all_decided)
            states = dict(Delivery.objects.values_list("notification__user_id", "state"))
            assert states == {patient.pk: "SENT", doctor.user.pk: "SEEN"}  # the doctor's socket lives on A
            assert [m.to for m in mailoutbox] == [[patient.email]]
            assert presence.backend().is_online(patient.pk)  # decided well within the TTL
    finally:
        a.stop()
        b.stop()
