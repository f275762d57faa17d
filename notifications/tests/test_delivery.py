"""Offline delivery: cancellations, reschedules and reminders by email and SMS to users with no socket.

Presence is the real store (in memory, or Redis with REDIS_URL); the worker is django-tasks-db's
`db_worker` in batch mode; the clock is time-machine's.
"""

import datetime
import logging

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.conf import settings
from django.utils import timezone

from appointments.services import appointment_cancel, appointment_reschedule
from appointments.texts import SMS_TEXTS
from core.leases import claim_due
from notifications import presence, sms
from notifications.delivery import SEEN_MARGIN_SECONDS, _send_one, retry_delay
from notifications.models import Delivery, Notification
from tests.support import hhmm
from tests.support.worker import run_worker

# The clinic's time zone (TIME_ZONE): not overridden here, which would reset the process's TZ.
CLINIC_TZ = timezone.get_default_timezone()
NOW = datetime.datetime(2030, 3, 1, 10, 0, tzinfo=CLINIC_TZ)
DAY = datetime.date(2030, 3, 3)
REASON = "chest pain, private"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.REMINDER_OFFSETS = [2 * 3600]
    settings.DELIVERY_RETRY_SECONDS = 30
    settings.DELIVERY_MAX_ATTEMPTS = 3
    settings.SMS_BACKEND = "notifications.sms.ConsoleSMSBackend"


@pytest.fixture
def clock(db):
    with time_machine.travel(NOW, tick=False) as traveller:
        run_worker(starting=True)  # a worker is up before anything is booked
        yield traveller


class Node:
    """A server process as the presence store hears it: its hub announces the users with a socket
    there and vouches for them again at each heartbeat, at the clock's time; a killed one falls silent."""

    def __init__(self, name: str):
        self.name, self.users = name, set()

    def connect(self, user) -> None:
        self.users.add(user.pk)
        async_to_sync(presence.backend().announce)(self.name, online=[user.pk], offline=[])

    def heartbeat(self) -> None:
        async_to_sync(presence.backend().announce)(self.name, online=set(self.users), offline=[])

    def close(self, user) -> None:
        self.users.discard(user.pk)
        async_to_sync(presence.backend().announce)(self.name, online=[], offline=[user.pk])


@pytest.fixture
def node():
    server = Node("test-node")
    yield server
    async_to_sync(presence.backend().announce)(server.name, online=[], offline=server.users)


needs_redis = pytest.mark.skipif(
    not settings.REDIS_URL, reason="without Redis presence is this one process's: it cannot die and leave entries"
)
# When the worker decides about a user who had an entry but no heartbeat since the notification.
DECIDED = datetime.timedelta(seconds=2 * presence.HEARTBEAT_SECONDS + SEEN_MARGIN_SECONDS + 1)


@pytest.fixture
def appointment(clock, book, patient, doctor):
    return book(patient=patient, doctor=doctor, date=DAY, time="09:00", reason=REASON)


def test_a_cancellation_reaches_users_without_a_socket_by_email(appointment, patient, doctor, mailoutbox):
    appointment_cancel(actor=patient, appointment=appointment)
    assert mailoutbox == []  # sent by the worker, after commit
    run_worker()
    by_address = {m.to[0]: m for m in mailoutbox}
    assert set(by_address) == {patient.email, doctor.user.email}
    mail = by_address[patient.email]
    assert mail.subject == "Appointment Cancelled"
    assert "Dr. Doc" in mail.body and "2030-03-03" in mail.body and "09:00" in mail.body
    assert "chest" not in mail.body
    run_worker()
    assert len(mailoutbox) == 2  # once


def test_a_user_with_a_socket_open_gets_no_email(appointment, patient, doctor, clock, mailoutbox, node):
    node.connect(patient)
    appointment_cancel(actor=patient, appointment=appointment)
    run_worker()
    assert [m.to for m in mailoutbox] == [[doctor.user.email]]
    assert Notification.objects.filter(user=patient, type="APPOINTMENT_CANCELLED").count() == 1

    clock.shift(presence.HEARTBEAT_SECONDS)
    node.heartbeat()  # the patient's server is alive after the cancellation
    clock.move_to(NOW + DECIDED)
    run_worker()
    assert [m.to for m in mailoutbox] == [[doctor.user.email]]
    assert not Delivery.objects.filter(notification__user=patient).exclude(state="SEEN").exists()


@needs_redis
def test_a_user_whose_server_process_died_gets_the_cancellation_by_email_and_sms(
    appointment, patient, doctor, clock, mailoutbox, node, caplog
):
    patient.notify_sms, patient.phone = True, "+8801712345678"
    patient.save()
    node.connect(patient)
    clock.shift(5)  # the patient's server is killed: its entry stays, unrefreshed, for the TTL
    appointment_cancel(actor=doctor.user, appointment=appointment)
    run_worker()
    # The entry may still be a live socket's: the worker waits for a heartbeat (the doctor has no socket).
    assert [m.to for m in mailoutbox] == [[doctor.user.email]]

    clock.move_to(NOW + datetime.timedelta(seconds=5) + DECIDED)
    assert presence.backend().is_online(patient.pk)  # still within the TTL: "online" by the old rule
    with caplog.at_level(logging.INFO, logger="notifications.sms"):
        run_worker()
    [_, mail] = mailoutbox
    assert mail.to == [patient.email] and mail.subject == "Appointment Cancelled"
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.name == "notifications.sms"] == [
        "SMS to +8801712345678"
    ]


@needs_redis
def test_a_user_who_closed_the_page_after_the_cancellation_gets_no_email(
    appointment, patient, doctor, clock, mailoutbox, node
):
    node.connect(patient)
    appointment_cancel(actor=doctor.user, appointment=appointment)
    clock.shift(SEEN_MARGIN_SECONDS + 1)
    node.close(patient)  # a clean close after the push: the socket was there to see it
    clock.move_to(NOW + DECIDED)
    run_worker()
    assert [m.to for m in mailoutbox] == [[doctor.user.email]]
    assert set(Delivery.objects.filter(notification__user=patient).values_list("state", flat=True)) == {"SEEN"}


def test_preferences_decide_the_channels(appointment, patient, doctor, mailoutbox, caplog):
    patient.notify_email, patient.notify_sms, patient.phone, patient.language = False, True, "+8801712345678", "bn"
    patient.save()
    doctor.user.notify_email = False
    doctor.user.save()
    with caplog.at_level(logging.INFO, logger="notifications.sms"):
        appointment_reschedule(actor=patient, appointment=appointment, date=DAY, time=hhmm("11:00"))
        run_worker()
    assert mailoutbox == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "notifications.sms"]
    assert line.startswith("SMS to +8801712345678: ")
    text = line.removeprefix("SMS to +8801712345678: ")
    assert text.startswith("নতুন সময়: 2030-03-03 11:00") and "Dr. Doc" in text
    assert sms.segment_limit(text) == 70 and sms.sms_length(text) <= 70
    assert "chest" not in text


def test_a_reminder_to_an_offline_patient_goes_by_email_too(appointment, patient, clock, mailoutbox):
    clock.move_to(datetime.datetime(2030, 3, 3, 7, 0, tzinfo=CLINIC_TZ))
    run_worker()
    [mail] = mailoutbox
    assert mail.to == [patient.email] and mail.subject == "Appointment Reminder"
    assert "chest" not in mail.body


class FlakySMS(sms.BaseSMSBackend):
    failures = 0
    sent: list = []

    def send(self, phone, text):
        if FlakySMS.failures > 0:
            FlakySMS.failures -= 1
            raise ConnectionError("provider down: " + text)
        FlakySMS.sent.append((phone, text))


def test_a_failing_sms_backend_is_retried_with_backoff_and_the_notification_stays(
    appointment, patient, clock, settings
):
    settings.SMS_BACKEND = "notifications.tests.test_delivery.FlakySMS"
    FlakySMS.failures, FlakySMS.sent = 2, []
    patient.notify_email, patient.notify_sms, patient.phone = False, True, "+8801712345678"
    patient.save()
    appointment_cancel(actor=patient, appointment=appointment)
    run_worker()
    [delivery] = Delivery.objects.filter(notification__user=patient)
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("PENDING", 1, "ConnectionError")
    assert delivery.due_at == NOW + datetime.timedelta(seconds=30)
    assert Notification.objects.filter(user=patient, type="APPOINTMENT_CANCELLED").count() == 1

    clock.move_to(NOW + datetime.timedelta(seconds=29))
    run_worker()
    assert FlakySMS.failures == 1  # not retried before its time
    clock.move_to(NOW + datetime.timedelta(seconds=30))
    run_worker()
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.due_at == NOW + datetime.timedelta(seconds=90)  # then 60 s
    clock.move_to(NOW + datetime.timedelta(seconds=90))
    run_worker()
    delivery.refresh_from_db()
    assert delivery.state == "SENT" and delivery.attempts == 3
    assert len(FlakySMS.sent) == 1 and FlakySMS.sent[0][0] == "+8801712345678"


def test_a_backend_that_keeps_failing_is_given_up_and_the_notification_stays(appointment, patient, clock, settings):
    settings.SMS_BACKEND = "notifications.tests.test_delivery.FlakySMS"
    FlakySMS.failures, FlakySMS.sent = 100, []
    patient.notify_email, patient.notify_sms, patient.phone = False, True, "+8801712345678"
    patient.save()
    appointment_cancel(actor=patient, appointment=appointment)
    for attempt in range(1, 4):
        run_worker()
        clock.shift(retry_delay(attempt))
    [delivery] = Delivery.objects.filter(notification__user=patient)
    assert (delivery.state, delivery.attempts) == ("FAILED", 3)
    assert Notification.objects.filter(user=patient, type="APPOINTMENT_CANCELLED").count() == 1


LONG_NAME = "Dr. " + "Abdur Rahman Chowdhury " * 6


@pytest.mark.parametrize("language", ["en", "bn"])
@pytest.mark.parametrize("key", sorted(SMS_TEXTS))
def test_every_sms_fits_one_segment_even_with_a_long_name(key, language, book, patient, doctor, clock):
    from django.utils import translation

    with translation.override(language):
        template = str(SMS_TEXTS[key])
    # The queue's alerts name a number instead of the date and time; a day's numbers stay far below 10,000.
    params = {"date": "2030-03-03", "time": "09:00", "number": 9999}
    shown = [str(value) for key, value in params.items() if "{" + key + "}" in template]
    for name in ("Dr. Rahman", LONG_NAME, "ডা. আব্দুর রহমান চৌধুরী" * 3):
        text = sms.fit_one_segment(template, name=name, **params)
        assert sms.sms_length(text) <= sms.segment_limit(text), text
        assert shown and all(value in text for value in shown)
        if language == "bn":
            assert sms.segment_limit(text) == 70
    if language == "bn":
        short = sms.fit_one_segment(template, name="Dr. Rahman", **params)
        assert "Dr. Rahman" in short  # a usual name is not cut


def test_presence_is_asked_by_the_worker_not_the_change_and_one_that_does_not_answer_counts_as_unseen(
    appointment, patient, doctor, mailoutbox, monkeypatch
):
    asked = []

    def presence_down(self, user_ids):
        asked.append(set(user_ids))
        raise TimeoutError("Redis did not answer")

    monkeypatch.setattr(type(presence.backend()), "sightings", presence_down)
    appointment_cancel(actor=patient, appointment=appointment)
    assert asked == []  # not while the cancellation held its locks
    run_worker()
    assert asked == [{patient.pk, doctor.user.pk}]
    assert {m.to[0] for m in mailoutbox} == {patient.email, doctor.user.email}


def test_a_worker_whose_lease_ran_out_does_not_send_what_another_took(appointment, patient, clock, mailoutbox):
    appointment_cancel(actor=patient, appointment=appointment)
    pending = Delivery.objects.filter(state="PENDING", due_at__lte=NOW)
    slow, [first, *_] = claim_due(pending, now=NOW)
    clock.shift(31)  # the slow worker's lease is over; another worker claims the same rows
    fast, _ = claim_due(pending, now=timezone.now())
    assert _send_one(first, slow) is False
    assert _send_one(first, fast) is True
    assert [m.to for m in mailoutbox] == [[Delivery.objects.get(pk=first).address]]
