"""A database or Redis outage: a JSON 503 for the API, a short 503 page for the portals, 4503 on the socket.

The outage is injected where the code meets the service (a real one is stopped in tests/test_live_outages.py).
"""

from unittest import mock

import pytest
import redis.exceptions
from channels.testing import WebsocketCommunicator
from django import db
from django.test import Client

from mediconnect.asgi import application
from tests.support.wsutil import TIMEOUT, open_socket, ready, token_for

DB_DOWN = db.OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')
REDIS_DOWN = redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def _assert_api_503(response):
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == {"detail": "The service is briefly unavailable; try again shortly."}


@pytest.mark.parametrize("error", [DB_DOWN, db.InterfaceError("connection already closed"), REDIS_DOWN])
def test_an_api_call_during_an_outage_is_a_json_503(api, patient, error):
    with mock.patch("appointments.api.appointments_visible_to", side_effect=error):
        _assert_api_503(api(patient).get("/api/appointments/"))


def test_a_pool_timeout_is_an_outage_too(api, patient):
    from psycopg_pool import PoolTimeout

    with mock.patch("appointments.api.appointments_visible_to", side_effect=PoolTimeout("couldn't get a connection")):
        _assert_api_503(api(patient).get("/api/appointments/"))


def test_a_portal_page_during_an_outage_is_a_short_503_page(patient):
    client = Client(raise_request_exception=False)
    client.force_login(patient)
    with mock.patch("mediconnect.pages.portal.unread_count", side_effect=DB_DOWN):
        response = client.get("/patient/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == "5"
    text = response.content.decode()
    assert "briefly unavailable" in text and "Traceback" not in text and "5432" not in text


def test_an_outage_met_in_a_middleware_still_answers_503(patient):
    client = Client(raise_request_exception=False)
    client.force_login(patient)
    with mock.patch("accounts.middleware._activate_language", side_effect=DB_DOWN):
        page = client.get("/patient/")
        api = client.get("/api/me/")
    assert page.status_code == 503 and "briefly unavailable" in page.content.decode()
    _assert_api_503(api)


def test_other_errors_stay_a_plain_500(api, patient):
    client = Client(raise_request_exception=False)
    client.force_login(patient)
    with mock.patch("mediconnect.pages.portal.unread_count", side_effect=RuntimeError("a bug")):
        response = client.get("/patient/")
    assert response.status_code == 500 and "Traceback" not in response.content.decode()


async def _handshake_closes_with_4503(user):
    communicator = WebsocketCommunicator(application, f"/ws/?token={token_for(user)}", headers=[(b"host", b"x")])
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected  # accepted, so the client does not take it for a refused token (403)
    closed = await communicator.receive_output(timeout=TIMEOUT)
    assert closed == {"type": "websocket.close", "code": 4503}
    await communicator.wait(timeout=TIMEOUT)


@pytest.mark.django_db(transaction=True)
async def test_a_handshake_during_a_database_outage_closes_with_reconnect_later(patient):
    async def database_down(*args, **kwargs):
        raise DB_DOWN

    with mock.patch("mediconnect.realtime.consumers._open_stream", database_down):
        await _handshake_closes_with_4503(patient)
    socket = await open_socket(patient)  # the database is back: served as usual
    await ready(socket)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_handshake_during_a_redis_outage_closes_with_reconnect_later(patient):
    with mock.patch("mediconnect.realtime.hub.Hub.join", side_effect=REDIS_DOWN):
        await _handshake_closes_with_4503(patient)
    socket = await open_socket(patient)
    await ready(socket)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_bad_token_is_still_refused_at_the_handshake(patient):
    communicator = WebsocketCommunicator(application, "/ws/?token=nope", headers=[(b"host", b"x")])
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert not connected
