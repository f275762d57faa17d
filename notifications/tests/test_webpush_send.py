"""Web Push sending (contract v1.2): what the worker sends each subscription, and what it does with the answers.

The messages go over real HTTP to a push receiver of the test's own on loopback, which checks the
VAPID token and decrypts the RFC 8291 body as a browser would (tests/support/push_receiver.py).
The worker's task runs here in the test's process (`pushes_send_due`); the clock is passed in where
a retry's time matters, so nothing sleeps.
"""

import datetime
import email.utils
import json

import pytest
from django.utils import timezone

from notifications import webpush
from notifications.models import Notification, NotificationType, PushMessage, PushSubscription
from notifications.services import notification_create, push_subscription_add
from notifications.webpush import pushes_send_due
from tests.support.push_receiver import PushReceiver, self_signed

pytestmark = pytest.mark.django_db

PAYLOAD_KEYS = {"notification_id", "type", "title", "body", "url"}


@pytest.fixture
def subscribe(push_receiver):
    """`subscribe(user)` → a browser subscribed for the user at the receiver."""

    def _subscribe(user):
        browser = push_receiver.subscribe()
        push_subscription_add(
            user=user, endpoint=browser.endpoint, p256dh=browser.p256dh, auth=webpush.b64url_encode(browser.auth)
        )
        return browser

    return _subscribe


def notify(user, type=NotificationType.APPOINTMENT_REMINDER, *, related_id=7, message="See you at 09:00"):
    return notification_create(
        user=user, type=type, title="A title", message=message, related_id=related_id, related_type="Appointment"
    )


def test_a_booking_pushes_the_patients_notification_decrypted_with_its_keys(
    book, patient, doctor, subscribe, push_receiver
):
    browser = subscribe(patient)

    appointment = book(patient=patient, doctor=doctor, reason="Chest pain since Tuesday")
    sent = pushes_send_due()

    assert sent == 1
    [message] = push_receiver.delivered(browser.endpoint)
    assert message.error is None
    assert message.content_encoding == "aes128gcm"
    stored = Notification.objects.get(user=patient)
    assert message.payload == {
        "notification_id": stored.pk,
        "type": "APPOINTMENT_CONFIRMED",
        "title": "Appointment Confirmed",
        "body": stored.message,
        "url": "/patient/",
    }
    assert "Chest pain" not in json.dumps(message.payload)
    assert message.claims["sub"] == "mailto:push-tests@mediconnect.test"
    assert appointment.reason  # the reason was there to leak


def test_the_doctor_gets_their_own_and_the_portal_is_theirs(book, patient, doctor, subscribe, push_receiver):
    browser = subscribe(doctor.user)

    book(patient=patient, doctor=doctor)
    pushes_send_due()

    [message] = push_receiver.delivered(browser.endpoint)
    assert message.payload["type"] == "APPOINTMENT_BOOKED"
    assert message.payload["url"] == "/doctor/"


def test_staff_open_the_admin(admin_user, subscribe, push_receiver):
    browser = subscribe(admin_user)

    notify(admin_user, NotificationType.DOCTOR_DIGEST)
    pushes_send_due()

    assert push_receiver.delivered(browser.endpoint)[0].payload["url"] == "/admin/"


def test_every_subscription_of_the_user_gets_it_and_nobody_elses(patient, patient2, subscribe, push_receiver):
    phone, laptop, other = subscribe(patient), subscribe(patient), subscribe(patient2)

    notify(patient)
    pushes_send_due()

    assert len(push_receiver.delivered(phone.endpoint)) == 1
    assert len(push_receiver.delivered(laptop.endpoint)) == 1
    assert push_receiver.messages(other.endpoint) == []


@pytest.mark.parametrize(
    ("type", "ttl", "urgency", "topic"),
    [
        (NotificationType.QUEUE_CALLED, "300", "high", "queue-41"),
        (NotificationType.QUEUE_NEXT, "300", "high", "queue-41"),
        (NotificationType.VIDEO_CALL, "86400", "high", "call-41"),
        (NotificationType.APPOINTMENT_CONFIRMED, "86400", "normal", None),
        (NotificationType.APPOINTMENT_CANCELLED, "86400", "normal", None),
        (NotificationType.PRESCRIPTION_ISSUED, "86400", "normal", None),
        (NotificationType.DOCUMENT_ADDED, "86400", "normal", None),
    ],
)
def test_headers_per_type(patient, subscribe, push_receiver, type, ttl, urgency, topic):
    browser = subscribe(patient)

    notify(patient, type, related_id=41)
    pushes_send_due()

    [message] = push_receiver.delivered(browser.endpoint)
    assert (message.ttl, message.urgency, message.topic) == (ttl, urgency, topic)
    assert message.payload["type"] == type


def test_a_queue_alert_replaces_the_older_one_of_the_same_appointment_and_no_other(patient, subscribe, push_receiver):
    browser = subscribe(patient)

    notify(patient, NotificationType.QUEUE_NEXT, related_id=5)
    notify(patient, NotificationType.QUEUE_CALLED, related_id=5)
    notify(patient, NotificationType.QUEUE_CALLED, related_id=6)
    pushes_send_due()

    topics = [m.topic for m in push_receiver.delivered(browser.endpoint)]
    assert sorted(topics) == ["queue-5", "queue-5", "queue-6"]
    assert all(len(t) <= 32 and t.replace("-", "").replace("_", "").isalnum() for t in topics)


def test_a_video_call_opens_the_visit(patient, subscribe, push_receiver):
    browser = subscribe(patient)

    notify(patient, NotificationType.VIDEO_CALL, related_id=93)
    pushes_send_due()

    assert push_receiver.delivered(browser.endpoint)[0].payload["url"] == "/visit/93/"


@pytest.mark.parametrize("char", ["x", "অ", "😀"])
def test_a_long_body_is_cut_to_fit_3_kb(patient, subscribe, push_receiver, char):
    browser = subscribe(patient)

    notify(patient, message=char * 5000)
    pushes_send_due()

    [message] = push_receiver.delivered(browser.endpoint)
    assert message.size <= 3000
    assert set(message.payload) == PAYLOAD_KEYS
    assert message.payload["body"].endswith("…")
    assert message.payload["body"].rstrip("…") == char * (len(message.payload["body"]) - 1)
    assert message.size > 2900  # cut to the limit, not far below it


@pytest.mark.parametrize("status", [404, 410])
def test_a_forgotten_subscription_is_deleted_and_the_others_still_get_theirs(patient, subscribe, push_receiver, status):
    gone, kept = subscribe(patient), subscribe(patient)
    push_receiver.answer(gone.endpoint, status)

    notify(patient)
    sent = pushes_send_due()

    assert sent == 1
    assert len(push_receiver.delivered(kept.endpoint)) == 1
    assert not PushSubscription.objects.filter(endpoint=gone.endpoint).exists()
    assert PushSubscription.objects.filter(endpoint=kept.endpoint).exists()

    notify(patient)
    pushes_send_due()
    assert len(push_receiver.messages(gone.endpoint)) == 1  # never tried again


def _retry_in(seconds: float, now) -> None:
    [message] = PushMessage.objects.filter(state=PushMessage.State.PENDING)
    assert message.due_at == now + datetime.timedelta(seconds=seconds)


def test_429_is_retried_when_retry_after_says_and_not_before(patient, subscribe, push_receiver, settings):
    settings.PUSH_RETRY_SECONDS = 10
    browser, other = subscribe(patient), subscribe(patient)
    push_receiver.answer(browser.endpoint, 429, retry_after="120")
    notify(patient)
    now = timezone.now()

    assert pushes_send_due(now=now) == 1  # the other subscription's went through meanwhile
    _retry_in(120, now)
    assert pushes_send_due(now=now + datetime.timedelta(seconds=119)) == 0
    assert pushes_send_due(now=now + datetime.timedelta(seconds=120)) == 1

    assert [m.status for m in push_receiver.messages(browser.endpoint)] == [429, 201]
    assert len(push_receiver.delivered(other.endpoint)) == 1
    # Accepted: never sent again.
    assert pushes_send_due(now=now + datetime.timedelta(days=1)) == 0
    assert len(push_receiver.messages(browser.endpoint)) == 2
    assert not PushMessage.objects.filter(state=PushMessage.State.PENDING).exists()


def test_retry_after_as_an_http_date(patient, subscribe, push_receiver):
    browser = subscribe(patient)
    notify(patient)
    now = timezone.now()
    when = (now + datetime.timedelta(seconds=300)).replace(microsecond=0)
    push_receiver.answer(browser.endpoint, 503, retry_after=email.utils.format_datetime(when, usegmt=True))

    pushes_send_due(now=now)

    assert PushMessage.objects.get(state=PushMessage.State.PENDING).due_at == when


def test_5xx_without_retry_after_backs_off_doubling_then_gives_up(patient, subscribe, push_receiver, settings):
    settings.PUSH_RETRY_SECONDS, settings.PUSH_MAX_ATTEMPTS = 10, 3
    browser = subscribe(patient)
    push_receiver.answer(browser.endpoint, 500, times=5)
    notify(patient)
    now = timezone.now()

    pushes_send_due(now=now)
    _retry_in(10, now)
    now += datetime.timedelta(seconds=10)
    pushes_send_due(now=now)
    _retry_in(20, now)
    now += datetime.timedelta(seconds=20)
    pushes_send_due(now=now)

    assert PushMessage.objects.get().state == PushMessage.State.FAILED
    assert pushes_send_due(now=now + datetime.timedelta(days=1)) == 0
    assert len(push_receiver.messages(browser.endpoint)) == 3
    assert PushSubscription.objects.filter(endpoint=browser.endpoint).exists()


def test_a_retry_after_shorter_than_the_backoff_waits_for_the_backoff(patient, subscribe, push_receiver, settings):
    settings.PUSH_RETRY_SECONDS = 10
    browser = subscribe(patient)
    push_receiver.answer(browser.endpoint, 429, retry_after="1")
    notify(patient)
    now = timezone.now()

    pushes_send_due(now=now)

    _retry_in(10, now)


def test_a_push_service_that_is_down_is_retried(patient, settings, push_receiver):
    # An allowed endpoint on a port where nothing listens: connection refused.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.PUSH_ENDPOINT_ALLOW = [f"http://127.0.0.1:{port}/"]
    browser = push_receiver.subscribe()
    push_subscription_add(
        user=patient,
        endpoint=f"http://127.0.0.1:{port}/x",
        p256dh=browser.p256dh,
        auth=webpush.b64url_encode(browser.auth),
    )
    notify(patient)
    now = timezone.now()

    assert pushes_send_due(now=now) == 0

    message = PushMessage.objects.get()
    assert (message.state, message.attempts) == (PushMessage.State.PENDING, 1)
    assert message.due_at > now


def test_another_4xx_is_not_retried(patient, subscribe, push_receiver):
    browser = subscribe(patient)
    push_receiver.answer(browser.endpoint, 413)
    notify(patient)

    pushes_send_due()

    assert PushMessage.objects.get().state == PushMessage.State.FAILED
    assert PushSubscription.objects.filter(endpoint=browser.endpoint).exists()


def test_a_name_re_pointed_to_a_private_address_is_checked_again_at_send_time(patient, monkeypatch, settings):
    monkeypatch.setattr(webpush, "_resolve", lambda host, port: ["93.184.215.14"])
    from notifications.tests.test_webpush_api import browser_keys

    keys = browser_keys()
    push_subscription_add(user=patient, endpoint="https://push.example.net/x", **keys)
    notify(patient)
    monkeypatch.setattr(webpush, "_resolve", lambda host, port: ["10.0.0.5"])
    posted = []
    monkeypatch.setattr(webpush, "_post", lambda *args: posted.append(args))

    pushes_send_due()

    assert posted == []
    assert not PushSubscription.objects.exists()


def test_the_request_goes_to_the_address_that_was_checked(monkeypatch):
    """A name re-pointed between the send-time check and the connection: the adapter resolves it
    itself, refuses a non-public address, and never lets the HTTP library resolve it again."""
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])
    monkeypatch.setattr(webpush, "_resolve", lambda host, port: next(answers))
    assert webpush.endpoint_problem("https://push.example.net/x") is None
    public, _ = webpush._sessions()

    with pytest.raises(webpush.BlockedAddress):
        public.post("https://push.example.net/x", data=b"x", timeout=5)


def test_a_public_https_endpoint_is_reached_at_its_checked_address_with_its_name_for_tls(
    patient, settings, monkeypatch, tmp_path
):
    """The production path end to end: an https:// endpoint by name, not in PUSH_ENDPOINT_ALLOW, its
    certificate checked against the name while the connection goes to the address resolved and
    checked (here 127.0.0.1, let through for this test only: nothing public is reachable offline)."""
    name = "push.mediconnect.test"
    cert, key = self_signed(name, tmp_path)
    receiver = PushReceiver(
        subject=settings.VAPID_SUBJECT, server_key=webpush.application_server_key(), tls=(name, cert, key)
    ).start()
    try:
        settings.PUSH_ENDPOINT_ALLOW = []
        monkeypatch.setattr(webpush, "_resolve", lambda host, port: ["127.0.0.1"] if host == name else [])
        monkeypatch.setattr(webpush, "address_blocked", lambda address: False)
        sessions = webpush._sessions

        def trusting_our_ca():
            public, allowed = sessions()
            public.verify = cert
            return public, allowed

        monkeypatch.setattr(webpush, "_sessions", trusting_our_ca)
        browser = receiver.subscribe()
        assert browser.endpoint.startswith(f"https://{name}:")
        push_subscription_add(
            user=patient, endpoint=browser.endpoint, p256dh=browser.p256dh, auth=webpush.b64url_encode(browser.auth)
        )
        notify(patient)

        assert pushes_send_due() == 1

        [message] = receiver.delivered(browser.endpoint)
        assert message.claims["aud"] == receiver.origin
        assert message.payload["type"] == "APPOINTMENT_REMINDER"
    finally:
        receiver.stop()


def test_no_subscription_no_message(patient):
    notify(patient)

    assert not PushMessage.objects.exists()


def test_without_a_key_nothing_is_planned_or_sent(patient, subscribe, push_receiver, settings):
    subscribe(patient)
    settings.VAPID_PRIVATE_KEY = ""

    notify(patient)

    assert pushes_send_due() == 0
    assert not PushMessage.objects.exists()


def test_the_message_waits_for_the_change_to_commit(
    patient, subscribe, push_receiver, django_capture_on_commit_callbacks
):
    """Planned in the change's transaction with a task row of the worker's: no send in the request."""
    from django_tasks_db.models import DBTaskResult

    subscribe(patient)
    notify(patient)

    assert push_receiver.messages() == []
    assert DBTaskResult.objects.filter(task_path="notifications.webpush.send_due_pushes").exists()


def test_vapid_tokens_are_reused_within_the_hour_and_renewed_before_expiry():
    audience = "https://push.example.net"
    first = webpush.vapid_authorization(audience, now=1_000_000)

    assert webpush.vapid_authorization(audience, now=1_000_000 + 3600) == first
    assert webpush.vapid_authorization(audience, now=1_000_000 + 11 * 3600 + 1) != first


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120), (" 7 ", 7), ("", None), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0)],
)
def test_retry_after_forms(value, seconds):
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

    assert webpush.retry_after_seconds(value, now=now) == seconds
