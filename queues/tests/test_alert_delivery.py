"""The queue's alerts reach a patient with no open socket by SMS (never by email: it would come too late);
a patient whose socket was there to see them gets no SMS. VIDEO_CALL goes the same way.

Presence is the real store (in memory, or Redis with REDIS_URL); the worker is django-tasks-db's
`db_worker` in batch mode; the clock is time-machine's."""

import datetime

import pytest
import time_machine
from django.utils import timezone

from appointments.models import Appointment
from notifications import presence, sms
from notifications.models import Delivery, Notification
from notifications.services import notification_create
from notifications.tests.test_delivery import DECIDED, Node
from queues.services import queue_call_next
from tests.support import hhmm
from tests.support.worker import run_worker

CLINIC_TZ = timezone.get_default_timezone()
NOW = datetime.datetime(2030, 3, 1, 10, 0, tzinfo=CLINIC_TZ)
PHONE = "+8801712345678"
REASON = "chest pain, private"


class RecordingSMS(sms.BaseSMSBackend):
    """Keeps what it was given to send: (phone, text)."""

    sent: list = []

    def send(self, phone, text):
        RecordingSMS.sent.append((phone, text))


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.REMINDER_OFFSETS = []
    settings.SMS_BACKEND = "queues.tests.test_alert_delivery.RecordingSMS"
    RecordingSMS.sent = []


@pytest.fixture
def clock(db):
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def node():
    server = Node("alerts-test-node")
    yield server
    from asgiref.sync import async_to_sync

    async_to_sync(presence.backend().announce)(server.name, online=[], offline=server.users)


@pytest.fixture
def texting(patient, patient2):
    """Both patients want SMS (and email) while offline."""
    for n, p in enumerate((patient, patient2)):
        p.notify_sms, p.notify_email, p.phone = True, True, f"{PHONE}{n}"
        p.save()
    return patient, patient2


@pytest.fixture
def queue(clock, book, texting, doctor) -> list[Appointment]:
    """Today's #1 (patient) and #2 (patient2), booked before the doctor started."""
    patient, patient2 = texting
    return [
        book(patient=patient, doctor=doctor, date=NOW.date(), time=hhmm("11:00"), reason=REASON),
        book(patient=patient2, doctor=doctor, date=NOW.date(), time=hhmm("11:15"), reason=REASON),
    ]


def test_offline_patients_get_their_alerts_by_sms_and_not_by_email(queue, patient, patient2, doctor, mailoutbox):
    queue_call_next(actor=doctor.user, doctor=doctor)
    run_worker()

    assert mailoutbox == []
    assert sorted(RecordingSMS.sent) == [
        (patient.phone, "Your turn: Dr. Doc is calling #1. MediConnect"),
        (patient2.phone, "You're next: Dr. Doc, #2. MediConnect"),
    ]
    assert set(Delivery.objects.values_list("channel", "state")) == {("SMS", "SENT")}
    run_worker()
    assert len(RecordingSMS.sent) == 2  # once


def test_in_bangla_the_sms_fits_one_segment_and_names_no_reason(queue, patient2, doctor):
    patient2.language = "bn"
    patient2.save()
    queue_call_next(actor=doctor.user, doctor=doctor)
    run_worker()

    [text] = [text for phone, text in RecordingSMS.sent if phone == patient2.phone]
    assert text == "এরপরই আপনি: Dr. Doc, সিরিয়াল #2। MediConnect"
    assert sms.segment_limit(text) == 70 and sms.sms_length(text) <= 70
    assert not any("chest" in text for _, text in RecordingSMS.sent)


def test_no_sms_for_a_patient_without_a_phone_or_who_wants_none(queue, patient, patient2, doctor):
    patient.phone = ""
    patient.save()
    patient2.notify_sms = False
    patient2.save()
    queue_call_next(actor=doctor.user, doctor=doctor)
    run_worker()
    assert RecordingSMS.sent == [] and not Delivery.objects.exists()
    assert Notification.objects.filter(type__in=["QUEUE_CALLED", "QUEUE_NEXT"]).count() == 2


def test_a_patient_whose_socket_saw_it_gets_no_sms(queue, patient, patient2, doctor, clock, node):
    node.connect(patient)
    queue_call_next(actor=doctor.user, doctor=doctor)
    run_worker()
    clock.shift(presence.HEARTBEAT_SECONDS)
    node.heartbeat()  # the patient's server is alive after the alert
    clock.move_to(NOW + DECIDED)
    run_worker()

    assert RecordingSMS.sent == [(patient2.phone, "You're next: Dr. Doc, #2. MediConnect")]
    assert not Delivery.objects.filter(notification__user=patient).exclude(state="SEEN").exists()


def test_a_video_call_goes_by_sms_only_too(clock, texting, mailoutbox):
    """VIDEO_CALL (the doctor rings; made by the video visits) is offline-by-SMS like the queue's alerts."""
    patient, _ = texting
    notification_create(
        user=patient,
        type="VIDEO_CALL",
        title="Video visit",
        message="Dr. Doc is calling you",
        sms_text="Dr. Doc is calling you. MediConnect",
    )
    run_worker()
    assert mailoutbox == []
    assert RecordingSMS.sent == [(patient.phone, "Dr. Doc is calling you. MediConnect")]
