"""The queue's alerts with the real task worker: a worker SIGKILLed while it sends an alert's SMS, then
another, leave one stored notification and one SMS sent (the provider had not taken the first)."""

import tempfile
import time
from pathlib import Path

import pytest
from django.utils import timezone

from appointments.services import appointment_book
from notifications.models import Delivery, Notification
from queues.models import QueueAlert
from queues.services import queue_call_next
from tests import live
from tests.support import hhmm

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

LEASE_SECONDS = 2  # how long the killed worker's claim holds the delivery; then another takes it


def wait_for(predicate, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)  # polling a process's effects, bounded by the deadline


def test_a_worker_killed_mid_send_and_another_leave_one_alert_and_one_sms(patient, doctor):
    patient.notify_sms, patient.notify_email, patient.phone = True, True, "+8801712345678"
    patient.save()
    appointment_book(actor=patient, doctor=doctor, date=timezone.localdate(), time=hhmm("09:00"))
    queue_call_next(actor=doctor.user, doctor=doctor)  # #1, the patient, offline: "It's your turn" by SMS
    [delivery] = Delivery.objects.filter(notification__user=patient)
    assert delivery.channel == "SMS"

    with tempfile.TemporaryDirectory(prefix="sms-") as folder:
        outbox = Path(folder)
        (outbox / "hold").touch()
        env = {
            "SMS_BACKEND": "tests.support.sms.FileSMSBackend",
            "TEST_SMS_DIR": folder,
            "TASK_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        with live.worker_process(**env) as first:
            wait_for(lambda: list(outbox.glob("started-*")), "the first worker to start sending")
            first.kill()  # SIGKILL, by its PID, mid-send
            first.wait(timeout=10)
        (outbox / "hold").unlink()

        with live.worker_process(**env):
            wait_for(lambda: Delivery.objects.get(pk=delivery.pk).state == "SENT", "the second worker's send")

        sent = [path.read_text() for path in outbox.glob("sent-*")]
        assert sent == ["+8801712345678\nYour turn: Dr. Doc is calling #1. MediConnect"]
        assert len(list(outbox.glob("started-*"))) == 2

    assert Notification.objects.filter(user=patient, type="QUEUE_CALLED").count() == 1
    assert QueueAlert.objects.filter(kind="QUEUE_CALLED").count() == 1
    assert Delivery.objects.filter(notification__user=patient).count() == 1
