"""Services broken on purpose under a real daphne: its own redis-server hung and restarted, and the
path to PostgreSQL cut, during bookings and handshakes. Nothing stored is lost."""

import asyncio
import json
import time

import pytest
import websockets
from channels.db import database_sync_to_async
from django.db import connection

from accounts.tests.factories import PASSWORD
from appointments.models import Appointment
from tests.breakable import TcpProxy
from tests.faults import REDIS_SERVER, RedisServer, retried_while_unavailable
from tests.live import Daphne

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server on PATH"),
]

# A hung Redis used to hold a booking for 20 s (four pushes, 5 s each). The client gives up well
# before that: this bounds the hang, it is not a speed check.
PROMPT = 8


async def receive(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


async def receive_until(ws, predicate) -> list[dict]:
    seen = []
    while not seen or not predicate(seen[-1]):
        seen.append(await receive(ws))
    return seen


def book(server, token, slot, *, timeout=10):
    body = {"doctor": server.doctor_id, "date": time.strftime("%Y-%m-%d"), "time": slot}
    return server.request_with_timeout("POST", "/api/appointments/", body, token, timeout=timeout)


@database_sync_to_async
def stored(appointment_id) -> bool:
    return Appointment.objects.filter(pk=appointment_id).exists()


@pytest.fixture
def own_redis():
    instance = RedisServer()
    yield instance
    instance.close()


@pytest.fixture(params=["core", "pubsub"])
def redis_server(request, own_redis, doctor):
    """A daphne on its own redis-server (each channels_redis layer), which the test may hang or stop."""
    instance = Daphne(REDIS_URL=own_redis.url, CHANNEL_LAYER=request.param)
    instance.doctor_id = doctor.pk
    yield instance
    own_redis.resume() if own_redis.hung else None
    instance.stop()


async def test_a_booking_with_redis_hung_answers_promptly_and_resume_delivers_it(redis_server, own_redis, patient):
    token = await asyncio.to_thread(redis_server.token, patient.email, PASSWORD)
    async with websockets.connect(f"{redis_server.ws_url}?token={token}", open_timeout=10) as ws:
        last_id = (await receive(ws))["data"]["last_event_id"] or 0

    own_redis.hang()
    try:
        status, body = await asyncio.to_thread(book, redis_server, token, "11:00", timeout=PROMPT)
        assert status == 201, body
        assert await stored(body["id"])
        status, second = await asyncio.to_thread(book, redis_server, token, "11:15", timeout=PROMPT)
        assert status == 201, second
    finally:
        own_redis.resume()

    url = f"{redis_server.ws_url}?token={token}&last_event_id={last_id}"
    async with websockets.connect(url, open_timeout=10) as ws:
        frames = await receive_until(
            ws, lambda f: f["type"] == "appointment_updated" and f["data"]["id"] == second["id"]
        )
    booked = [f["data"]["id"] for f in frames if f["type"] == "appointment_updated"]
    assert booked == [body["id"], second["id"]]  # both, in order, once each
    ids = [f["id"] for f in frames if "id" in f]
    assert ids == sorted(set(ids))


async def test_with_redis_down_bookings_succeed_handshakes_say_try_later_and_the_first_after_it_returns_works(
    redis_server, own_redis, patient, doctor
):
    token = await asyncio.to_thread(redis_server.token, patient.email, PASSWORD)
    doctor_token = await asyncio.to_thread(redis_server.token, doctor.user.email, PASSWORD)
    async with websockets.connect(f"{redis_server.ws_url}?token={token}", open_timeout=10) as ws:
        last_id = (await receive(ws))["data"]["last_event_id"] or 0
    own_redis.stop()

    status, body = await asyncio.to_thread(book, redis_server, token, "12:00", timeout=PROMPT)
    assert status == 201, body
    # The doctor's stream was never heard on this process, so the handshake needs Redis: not an HTTP
    # 500, but accepted and closed at once with 4503 "service unavailable, reconnect later". (The
    # patient's may still be served: the process may hold their group from the socket before.)
    async with websockets.connect(f"{redis_server.ws_url}?token={doctor_token}", open_timeout=10) as ws:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd.code == 4503

    own_redis.start()  # on the port it had
    url = f"{redis_server.ws_url}?token={token}&last_event_id={last_id}"
    async with websockets.connect(url, open_timeout=10) as ws:
        assert (await receive(ws))["type"] == "ready"  # the very first handshake after Redis returns
        frames = await receive_until(ws, lambda f: f["type"] == "appointment_updated")
        assert frames[-1]["data"]["id"] == body["id"]
    async with websockets.connect(f"{redis_server.ws_url}?token={doctor_token}", open_timeout=10) as ws:
        assert (await receive(ws))["type"] == "ready"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="cuts the path to PostgreSQL")
async def test_with_the_database_unreachable_the_api_answers_json_503_and_sockets_4503(patient, doctor):
    settings_dict = connection.settings_dict
    proxy = TcpProxy(int(settings_dict["PORT"] or 5432))
    url = f"postgres://{settings_dict['USER']}@127.0.0.1:{proxy.port}/{settings_dict['NAME']}"
    server = Daphne(DATABASE_URL=url, DB_POOL_TIMEOUT=1, DB_POOL_MIN_SIZE=0)
    try:
        token = await asyncio.to_thread(server.token, patient.email, PASSWORD)
        proxy.cut()
        status, body = await asyncio.to_thread(server.request, "GET", "/api/appointments/", token=token)
        assert (status, body) == (503, {"detail": "The service is briefly unavailable; try again shortly."})
        page = await asyncio.to_thread(_get_page, server, "/login/", "sessionid=some-session")
        assert page[0] == 503 and "briefly unavailable" in page[1]
        async with websockets.connect(f"{server.ws_url}?token={token}", open_timeout=10) as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await receive(ws)
        assert closed.value.rcvd.code == 4503

        proxy.restore()
        status, _ = await asyncio.to_thread(
            retried_while_unavailable, lambda: server.request("GET", "/api/appointments/", token=token)
        )
        assert status == 200
        async with websockets.connect(f"{server.ws_url}?token={token}", open_timeout=10) as ws:
            assert (await receive(ws))["type"] == "ready"
        assert "Internal Server Error" not in server.output()  # every failure above was a 503
    finally:
        server.stop()
        proxy.close()


def _get_page(server, path, cookie):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.url + path, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
