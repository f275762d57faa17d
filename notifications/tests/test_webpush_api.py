"""Web Push over REST (contract v1.2): the VAPID key, and the caller's own browser subscriptions."""

import base64
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from accounts.services import user_deactivate, user_set_password
from notifications import webpush
from notifications.models import PushSubscription

pytestmark = pytest.mark.django_db

ENDPOINT = "https://push.example.net/send/abc123"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def browser_keys() -> dict:
    """What a browser's `PushSubscription.toJSON()` carries as `keys`."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"p256dh": b64url(point), "auth": b64url(secrets.token_bytes(16))}


def subscription(endpoint=ENDPOINT, **keys) -> dict:
    return {"endpoint": endpoint, "keys": {**browser_keys(), **keys}}


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch):
    """Names resolve to a public address unless a test says otherwise (the machine is offline)."""
    monkeypatch.setattr(webpush, "_resolve", lambda host, port: ["93.184.215.14"])


def test_the_key_is_the_uncompressed_p256_point_of_the_configured_key(api, patient, settings):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.VAPID_PRIVATE_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()

    response = api(patient).get("/api/push/key/")

    assert response.status_code == 200
    assert set(response.json()) == {"public_key"}
    raw = webpush.b64url_decode(response.json()["public_key"])
    assert len(raw) == 65 and raw[0] == 4
    assert raw == key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def test_a_raw_base64url_key_gives_the_same_point_as_its_pem(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.VAPID_PRIVATE_KEY = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    raw_form = webpush.application_server_key()
    settings.VAPID_PRIVATE_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()

    assert webpush.application_server_key() == raw_form


def test_without_a_key_push_is_off_and_the_key_endpoint_says_so(api, patient, settings):
    settings.VAPID_PRIVATE_KEY = ""

    response = api(patient).get("/api/push/key/")

    assert response.status_code == 503
    assert "detail" in response.json()


def test_the_key_needs_a_signed_in_caller(client):
    assert client.get("/api/push/key/").status_code == 401


def test_subscribing_stores_the_browser_and_answers_its_id(api, patient):
    response = api(patient).post("/api/push/subscriptions/", subscription(), format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "endpoint", "created_at"}
    assert body["endpoint"] == ENDPOINT
    stored = PushSubscription.objects.get(pk=body["id"])
    assert stored.user == patient


def test_the_same_endpoint_again_is_200_with_the_existing_one(api, patient):
    first = api(patient).post("/api/push/subscriptions/", subscription(), format="json").json()

    again = api(patient).post("/api/push/subscriptions/", subscription(), format="json")

    assert again.status_code == 200
    assert again.json() == first
    assert PushSubscription.objects.filter(user=patient).count() == 1


def test_the_same_endpoint_for_another_user_is_theirs(api, patient, patient2):
    api(patient).post("/api/push/subscriptions/", subscription(), format="json")

    response = api(patient2).post("/api/push/subscriptions/", subscription(), format="json")

    assert response.status_code == 201
    assert PushSubscription.objects.filter(endpoint=ENDPOINT).count() == 2


def test_the_list_is_the_callers_own_and_paginated(api, patient, patient2):
    mine = api(patient).post("/api/push/subscriptions/", subscription(), format="json").json()
    api(patient2).post("/api/push/subscriptions/", subscription(ENDPOINT + "x"), format="json")

    body = api(patient).get("/api/push/subscriptions/").json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["results"] == [mine]


def test_deleting_ones_own_is_204_and_anothers_is_404(api, patient, patient2):
    mine = api(patient).post("/api/push/subscriptions/", subscription(), format="json").json()

    assert api(patient2).delete(f"/api/push/subscriptions/{mine['id']}/").status_code == 404
    assert PushSubscription.objects.filter(pk=mine["id"]).exists()
    assert api(patient).delete(f"/api/push/subscriptions/{mine['id']}/").status_code == 204
    assert not PushSubscription.objects.filter(pk=mine["id"]).exists()
    assert api(patient).delete(f"/api/push/subscriptions/{mine['id']}/").status_code == 404


def test_subscriptions_need_a_signed_in_caller(client):
    assert client.post("/api/push/subscriptions/", subscription(), content_type="application/json").status_code == 401
    assert client.get("/api/push/subscriptions/").status_code == 401


def test_the_portal_session_may_subscribe(client, patient):
    client.force_login(patient)

    response = client.get("/api/push/subscriptions/")

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"keys": browser_keys()}, "endpoint"),
        (subscription("http://push.example.net/x"), "endpoint"),
        (subscription("ftp://push.example.net/x"), "endpoint"),
        (subscription("not a url"), "endpoint"),
        (subscription("https://user:pw@push.example.net/x"), "endpoint"),
        (subscription("https://push.example.net:99999/x"), "endpoint"),
        (subscription("https://127.0.0.1/x"), "endpoint"),
        (subscription("https://10.1.2.3/x"), "endpoint"),
        (subscription("https://192.168.0.10/x"), "endpoint"),
        (subscription("https://172.16.5.5/x"), "endpoint"),
        (subscription("https://169.254.169.254/latest/meta-data/"), "endpoint"),
        (subscription("https://0.0.0.0/x"), "endpoint"),
        (subscription("https://224.0.0.1/x"), "endpoint"),
        (subscription("https://240.0.0.1/x"), "endpoint"),
        (subscription("https://100.64.0.1/x"), "endpoint"),
        # Numeric forms a resolver reads as 127.0.0.1.
        (subscription("https://2130706433/x"), "endpoint"),
        (subscription("https://0x7f000001/x"), "endpoint"),
        (subscription("https://0177.0.0.1/x"), "endpoint"),
        (subscription("https://127.1/x"), "endpoint"),
        (subscription("https://0x7f.0.0.1/x"), "endpoint"),
        (subscription("https://[::1]/x"), "endpoint"),
        (subscription("https://[::]/x"), "endpoint"),
        (subscription("https://[fd00::1]/x"), "endpoint"),
        (subscription("https://[fc12:3456::1]/x"), "endpoint"),
        (subscription("https://[fe80::1]/x"), "endpoint"),
        (subscription("https://[ff02::1]/x"), "endpoint"),
        (subscription("https://[::ffff:127.0.0.1]/x"), "endpoint"),
        (subscription("https://[::ffff:10.0.0.1]/x"), "endpoint"),
        (subscription("https://[2002:7f00:1::]/x"), "endpoint"),
        (subscription(p256dh="not+base64/"), "keys"),
        (subscription(p256dh=b64url(b"\x04" + bytes(64))), "keys"),
        (subscription(p256dh=b64url(secrets.token_bytes(33))), "keys"),
        (subscription(auth=b64url(secrets.token_bytes(15))), "keys"),
        (subscription(auth=b64url(secrets.token_bytes(17))), "keys"),
        ({"endpoint": ENDPOINT}, "keys"),
        ({"endpoint": ENDPOINT, "keys": {"auth": b64url(secrets.token_bytes(16))}}, "keys"),
    ],
)
def test_bad_subscriptions_are_400_by_field_and_store_nothing(api, patient, body, field):
    response = api(patient).post("/api/push/subscriptions/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "fd12::7", "fe80::7", "::1", "169.254.0.1"])
def test_a_name_that_resolves_to_a_private_address_is_refused(api, patient, monkeypatch, address):
    monkeypatch.setattr(webpush, "_resolve", lambda host, port: ["93.184.215.14", address])

    response = api(patient).post("/api/push/subscriptions/", subscription("https://sneaky.example/x"), format="json")

    assert response.status_code == 400
    assert "endpoint" in response.json()


def test_localhost_by_name_is_refused_by_what_it_resolves_to(api, patient, monkeypatch):
    monkeypatch.setattr(webpush, "_resolve", _real_resolve)

    response = api(patient).post("/api/push/subscriptions/", subscription("https://localhost/x"), format="json")

    assert response.status_code == 400


def _real_resolve(host, port):
    return [info[4][0] for info in webpush.socket.getaddrinfo(host, port)]


def test_a_public_address_is_accepted(api, patient):
    for endpoint in ["https://93.184.215.14/x", "https://[2606:4700::1111]/x"]:
        response = api(patient).post("/api/push/subscriptions/", subscription(endpoint), format="json")
        assert response.status_code == 201, response.json()


def test_an_allowed_prefix_may_be_plain_http_on_loopback(api, patient, settings):
    settings.PUSH_ENDPOINT_ALLOW = ["http://127.0.0.1:"]

    allowed = api(patient).post("/api/push/subscriptions/", subscription("http://127.0.0.1:8123/p/1"), format="json")
    other = api(patient).post("/api/push/subscriptions/", subscription("http://127.0.0.2:8123/p/1"), format="json")

    assert allowed.status_code == 201
    assert other.status_code == 400


@pytest.mark.parametrize("revoke", ["deactivate", "password"])
def test_deactivation_or_a_new_password_ends_every_subscription(api, patient, patient2, revoke):
    api(patient).post("/api/push/subscriptions/", subscription(), format="json")
    api(patient).post("/api/push/subscriptions/", subscription(ENDPOINT + "2"), format="json")
    api(patient2).post("/api/push/subscriptions/", subscription(), format="json")

    if revoke == "deactivate":
        user_deactivate(user=patient)
    else:
        user_set_password(user=patient, password="a-Brand-new-passphrase")

    assert not PushSubscription.objects.filter(user=patient).exists()
    assert PushSubscription.objects.filter(user=patient2).count() == 1
