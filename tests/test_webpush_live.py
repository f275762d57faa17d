"""Web Push against real receivers: the npm web-push-testing server (a push service written by others),
and a live daphne with a real `manage.py run_worker` whose push reaches the tests' own receiver.

Chromium cannot reach a real push service on these machines, so the server's pushes are checked by
two independent local receivers that verify VAPID and decrypt RFC 8291 as a push service and a
browser would (docs/push.md).
"""

import datetime
import json

import pytest
from django.utils import timezone

from accounts.tests.factories import PASSWORD
from notifications.models import NotificationType, PushSubscription
from notifications.services import notification_create
from notifications.webpush import application_server_key, pushes_send_due
from tests import live
from tests.live import Daphne
from tests.support import web_push_testing


@pytest.fixture(scope="module")
def wpt():
    web_push_testing.require()
    server = web_push_testing.WebPushTesting()
    yield server
    server.stop()


@pytest.fixture
def wpt_allowed(wpt, settings):
    settings.PUSH_ENDPOINT_ALLOW = [f"{wpt.origin}/"]
    return wpt


def _subscribe_through_the_api(api, user, subscription: dict) -> dict:
    body = {"endpoint": subscription["endpoint"], "keys": subscription["keys"]}
    response = api(user).post("/api/push/subscriptions/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.django_db
def test_web_push_testing_verifies_and_decrypts_what_we_send(api, patient, wpt_allowed):
    subscription = wpt_allowed.subscribe(application_server_key())
    _subscribe_through_the_api(api, patient, subscription)
    notification = notification_create(
        user=patient, type=NotificationType.QUEUE_CALLED, title="It's your turn", message="Room 3", related_id=12
    )

    assert pushes_send_due() == 1

    [text] = wpt_allowed.messages(subscription["clientHash"])
    assert json.loads(text) == {
        "notification_id": notification.pk,
        "type": "QUEUE_CALLED",
        "title": "It's your turn",
        "body": "Room 3",
        "url": f"/patient/?appointment={notification.related_id}",
    }


@pytest.mark.django_db
def test_a_subscription_web_push_testing_expired_is_deleted_on_its_410(api, patient, wpt_allowed):
    expired = wpt_allowed.subscribe(application_server_key())
    kept = wpt_allowed.subscribe(application_server_key())
    gone_id = _subscribe_through_the_api(api, patient, expired)["id"]
    _subscribe_through_the_api(api, patient, kept)
    wpt_allowed.expire(expired["clientHash"])

    notification_create(user=patient, type=NotificationType.APPOINTMENT_REMINDER, title="Reminder", message="Soon")
    sent = pushes_send_due()

    assert sent == 1
    assert not PushSubscription.objects.filter(pk=gone_id).exists()
    assert len(wpt_allowed.messages(kept["clientHash"])) == 1
    ids = [s["id"] for s in api(patient).get("/api/push/subscriptions/").json()["results"]]
    assert gone_id not in ids and len(ids) == 1


@pytest.fixture
def push_server(push_receiver, django_db_setup, django_db_blocker):
    """A daphne that accepts the receiver's endpoints, and a real `manage.py run_worker` beside it."""
    allow = f"{push_receiver.origin}/"
    server = Daphne(PUSH_ENDPOINT_ALLOW=allow)
    try:
        with live.worker_process(PUSH_ENDPOINT_ALLOW=allow):
            yield server
    finally:
        server.stop()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_booking_through_daphne_reaches_the_browser_by_the_worker(push_server, push_receiver, patient, doctor):
    token = push_server.token(patient.email, PASSWORD)
    browser = push_receiver.subscribe()
    status, body = push_server.request("POST", "/api/push/subscriptions/", browser.to_json(), token=token)
    assert status == 201, body
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()

    status, appointment = push_server.request(
        "POST",
        "/api/appointments/",
        {"doctor": doctor.pk, "date": tomorrow, "time": "10:30", "reason": "Chest pain since Tuesday"},
        token=token,
    )
    assert status == 201, appointment

    [message] = push_receiver.wait_for(lambda r: r.delivered(browser.endpoint), timeout=15)
    assert message.error is None
    assert message.payload["type"] == "APPOINTMENT_CONFIRMED"
    assert message.payload["url"] == "/patient/"
    assert "Dr. Doc" in message.payload["body"]
    assert "Chest pain" not in json.dumps(message.payload)
    assert (message.ttl, message.urgency) == ("86400", "normal")
