"""Against real daphne processes, with a real WebSocket client."""

import asyncio
import base64
import json
import os
import socket
import time
import uuid

import pytest
import websockets
from channels.db import database_sync_to_async
from django.conf import settings

from accounts.tests.factories import PASSWORD
from tests.live import Daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]
needs_redis = pytest.mark.skipif(
    not settings.REDIS_URL, reason="several server processes share events only through Redis (set REDIS_URL)"
)


async def receive(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


async def receive_until(ws, kind: str) -> list[dict]:
    seen = []
    while not seen or seen[-1]["type"] != kind:
        seen.append(await receive(ws))
    return seen


async def call(server, *args, **kwargs):
    return await asyncio.to_thread(server.request, *args, **kwargs)


async def token(server, user) -> str:
    return await asyncio.to_thread(server.token, user.email, PASSWORD)


async def test_a_booking_made_over_http_reaches_the_patients_socket(server, patient, doctor):
    patient_token, doctor_token = await token(server, patient), await token(server, doctor.user)
    async with websockets.connect(f"{server.ws_url}?token={patient_token}", open_timeout=10) as ws:
        assert (await receive(ws))["type"] == "ready"
        status, body = await call(
            server,
            "POST",
            "/api/appointments/",
            {
                "doctor": doctor.pk,
                "patient": patient.pk,
                "date": time.strftime("%Y-%m-%d"),
                "time": "10:30",
                "reason": "private detail",
            },
            token=doctor_token,
        )
        assert status == 201, body
        frames = await receive_until(ws, "appointment_updated")
        assert frames[0]["type"] == "new_notification"
        assert "private detail" not in frames[0]["data"]["message"]
        assert frames[-1]["data"]["id"] == body["id"]
    log = server.output()
    assert patient_token not in log and doctor_token not in log
    assert "private detail" not in log


async def test_a_frame_over_64_kib_is_closed_with_1009_by_the_real_server(server, patient):
    async with websockets.connect(f"{server.ws_url}?token={await token(server, patient)}", open_timeout=10) as ws:
        assert (await receive(ws))["type"] == "ready"
        await ws.send(json.dumps({"type": "join_queue", "data": {"pad": "x" * 70_000}}))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
    assert closed.value.rcvd.code == 1009


async def test_a_bad_token_is_refused_at_the_handshake_with_403(server):
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(f"{server.ws_url}?token=not-a-token", open_timeout=10):
            pass
    assert refused.value.response.status_code == 403


async def test_after_a_server_restart_resume_delivers_what_was_missed_exactly_once(patient, doctor):
    first = Daphne()
    try:
        patient_token = await token(first, patient)
        async with websockets.connect(f"{first.ws_url}?token={patient_token}", open_timeout=10) as ws:
            await receive(ws)
            status, _ = await asyncio.to_thread(first.book, patient_token, doctor.pk, "08:00")
            assert status == 201
            last_id = (await receive_until(ws, "appointment_updated"))[-1]["id"]
            first.kill()  # the server dies under the open socket
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=10)
    finally:
        first.stop()

    second = Daphne()
    try:
        patient_token = await token(second, patient)
        booked = []
        for slot in ("08:15", "08:30", "08:45"):
            status, body = await asyncio.to_thread(second.book, patient_token, doctor.pk, slot)
            assert status == 201
            booked.append(body["id"])
        url = f"{second.ws_url}?token={patient_token}&last_event_id={last_id}"
        async with websockets.connect(url, open_timeout=10) as ws:
            assert (await receive(ws))["type"] == "ready"
            replay = [await receive(ws) for _ in range(6)]
            assert [f["data"]["id"] for f in replay if f["type"] == "appointment_updated"] == booked
            assert [f["id"] for f in replay] == sorted({f["id"] for f in replay})
            # A sentinel after the replay: the very next frame must be it, so a late duplicate of a
            # replayed event (or one more event of the replay) would arrive first and show up here.
            status, _ = await call(second, "POST", "/api/notifications/read-all/", {}, token=patient_token)
            assert status == 200
            sentinel = await receive(ws)
            assert (sentinel["type"], sentinel["id"]) == ("all_notifications_read", replay[-1]["id"] + 1)
    finally:
        second.stop()


@needs_redis
async def test_two_processes_share_events_and_presence(patient, doctor, admin_user):
    # Their own key prefix: presence left behind by other tests' killed servers stays out of the count.
    shared = {"PRESENCE_TTL_SECONDS": 3, "PRESENCE_HEARTBEAT_SECONDS": 1, "CHANNEL_LAYER_PREFIX": uuid.uuid4().hex[:10]}
    a, b = Daphne(**shared), Daphne(**shared)
    try:
        patient_token, doctor_token = await token(b, patient), await token(a, doctor.user)
        admin_token = await asyncio.to_thread(a.token, admin_user.email, "x-Str0ng-pass")
        async with (
            websockets.connect(f"{b.ws_url}?token={patient_token}", open_timeout=10) as patient_ws,
            websockets.connect(f"{a.ws_url}?token={doctor_token}", open_timeout=10) as doctor_ws,
        ):
            await receive(patient_ws), await receive(doctor_ws)
            # A socket is announced to presence just after its `ready`, batched with others: wait for it.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if (await call(a, "GET", "/api/presence/", token=admin_token))[1]["connected_users"] == 2:
                    break
                await asyncio.sleep(0.1)  # polling, bounded by the deadline
            assert await call(a, "GET", "/api/presence/", token=admin_token) == (200, {"connected_users": 2})
            assert await call(b, "GET", f"/api/presence/{patient.pk}/", token=admin_token) == (
                200,
                {"user_id": patient.pk, "online": True},
            )

            status, body = await asyncio.to_thread(a.book, doctor_token, doctor.pk, "11:00", patient_id=patient.pk)
            assert status == 201
            frames = await receive_until(patient_ws, "appointment_updated")  # booked on A, heard on B
            assert frames[-1]["data"]["id"] == body["id"]

            b.kill()  # B's sockets are gone without a goodbye; presence must notice by expiry
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if (await call(a, "GET", f"/api/presence/{patient.pk}/", token=admin_token))[1]["online"] is False:
                    break
                await asyncio.sleep(0.2)  # polling, bounded by the deadline
            assert (await call(a, "GET", f"/api/presence/{patient.pk}/", token=admin_token))[1]["online"] is False
            assert await call(a, "GET", "/api/presence/", token=admin_token) == (200, {"connected_users": 1})
    finally:
        a.stop()
        b.stop()


async def test_presence_is_for_staff_only(server, patient):
    status, _ = await call(server, "GET", "/api/presence/", token=await token(server, patient))
    assert status == 403


async def test_over_the_real_server_origin_header_and_bad_frames_behave_as_the_contract_says(server, patient):
    access = await token(server, patient)
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(f"{server.ws_url}?token={access}", origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403

    headers = {"Authorization": f"Bearer {access}"}
    async with websockets.connect(server.ws_url, additional_headers=headers, origin=server.url) as ws:
        assert (await receive(ws))["data"]["user_id"] == patient.pk
        await ws.send("{not json")
        error = await receive(ws)
        assert error["type"] == "error" and error["data"]["code"] == "bad_request"
        await ws.send(json.dumps({"type": "leave_queue", "data": {"doctor_id": 1}}))
        await ws.send(json.dumps({"type": "join_queue", "data": {"doctor_id": "x"}}))
        assert (await receive(ws))["data"]["code"] == "bad_request"  # still open, still answering


async def test_the_real_server_closes_with_4401_when_the_token_runs_out(patient):
    short = Daphne(ACCESS_TOKEN_SECONDS=2)
    try:
        access = await token(short, patient)
        async with websockets.connect(f"{short.ws_url}?token={access}", open_timeout=10) as ws:
            assert (await receive(ws))["type"] == "ready"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=15)
        assert closed.value.rcvd.code == 4401
    finally:
        short.stop()


async def test_an_idle_socket_stays_open_past_every_layer_timeout_and_still_hears_bookings(server, patient, doctor):
    # Redis's client timeouts and the core layer's 5 s blocking reads once closed idle sockets with
    # 1011 every few seconds; a patient's phone left on the table must keep its socket.
    patient_token, doctor_token = await token(server, patient), await token(server, doctor.user)
    async with websockets.connect(f"{server.ws_url}?token={patient_token}", open_timeout=10) as ws:
        assert (await receive(ws))["type"] == "ready"
        with pytest.raises(TimeoutError):  # 16 s of silence: no frame, and no close
            await asyncio.wait_for(ws.recv(), timeout=16)
        status, body = await asyncio.to_thread(server.book, doctor_token, doctor.pk, "12:15", patient_id=patient.pk)
        assert status == 201, body
        frames = await receive_until(ws, "appointment_updated")
        assert frames[-1]["data"]["id"] == body["id"]
    assert "1011" not in server.output() and "Traceback" not in server.output()


async def test_healthz_answers_within_a_second_while_many_sockets_are_open(server, patient):
    patient_token = await token(server, patient)
    sockets = [await websockets.connect(f"{server.ws_url}?token={patient_token}", open_timeout=10) for _ in range(40)]
    try:
        for ws in sockets:
            assert (await receive(ws))["type"] == "ready"
        for _ in range(3):
            # urllib's timeout bounds the answer: a slow /healthz fails this call.
            status, body = await asyncio.to_thread(server.request_with_timeout, "GET", "/healthz", timeout=1)
            assert (status, body) == (200, {"database": "ok", "channel_layer": "ok"})
    finally:
        for ws in sockets:
            await ws.close()


def open_raw_socket(server, path: str) -> socket.socket:
    """A WebSocket handshake over a plain TCP socket that will then never read a byte."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server's side fills
    raw.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    raw.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return raw


def drained(raw: socket.socket) -> int:
    """Read what is left until the server ends the connection; the bytes read."""
    total = 0
    try:
        while chunk := raw.recv(1 << 16):
            total += len(chunk)
    except ConnectionResetError:
        pass
    return total


async def test_a_client_that_never_reads_is_dropped_and_the_users_other_socket_carries_on(server, patient):
    # 10 MB of stored events to replay: far past the backlog limit (1 MiB) and the kernel's buffers.
    ids = await database_sync_to_async(record_events)(patient, 400, 25_000)
    access = await token(server, patient)
    async with websockets.connect(f"{server.ws_url}?token={access}&last_event_id={ids[-1]}", open_timeout=10) as ws:
        assert (await receive(ws))["type"] == "ready"
        raw = await asyncio.to_thread(open_raw_socket, server, f"/ws/?token={access}&last_event_id=0")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if "websocket dropped" in server.output():
                    break
                await asyncio.sleep(0.2)  # polling the log, bounded by the deadline
            assert "websocket dropped: the client is not reading" in server.output()
            assert await asyncio.to_thread(drained, raw) < 400 * 25_000  # cut off, not delivered
        finally:
            raw.close()

        status, _ = await call(server, "POST", "/api/notifications/read-all/", token=access)
        assert status == 200
        live = await receive(ws)  # the reading socket is untouched: live as before
        assert live["type"] == "all_notifications_read" and live["id"] == ids[-1] + 1
    assert "Traceback" not in server.output()


def record_events(user, count: int, size: int) -> list[int]:
    from django.db import transaction

    from notifications import stream

    with transaction.atomic():
        events = stream.record_many([(user.pk, "new_notification", {"pad": "x" * size}) for _ in range(count)])
    return [e.seq for e in events]


@needs_redis
async def test_a_users_sockets_are_capped_across_two_processes_and_a_killed_ones_slots_come_free(patient):
    import redis

    prefix = uuid.uuid4().hex[:10]
    shared = {"PRESENCE_TTL_SECONDS": 3, "PRESENCE_HEARTBEAT_SECONDS": 1, "CHANNEL_LAYER_PREFIX": prefix}
    a, b = Daphne(**shared), Daphne(**shared)
    opened = []

    async def open_on(server):
        ws = await websockets.connect(f"{server.ws_url}?token={access}", open_timeout=10)
        opened.append(ws)
        assert (await receive(ws))["type"] == "ready"
        return ws

    async def closed_with(ws) -> int:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while True:
                await receive(ws)
        return closed.value.rcvd.code

    try:
        access = await token(a, patient)
        on_a = [await open_on(a) for _ in range(5)]
        on_b = [await open_on(b) for _ in range(5)]
        await open_on(b)  # the eleventh, on the other process than the oldest
        assert await closed_with(on_a[0]) == 4429

        b.kill()  # six sockets gone without a goodbye: their entries must stop counting
        counted = redis.Redis.from_url(settings.REDIS_URL)
        key = f"{prefix}:sockets:{patient.pk}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if counted.zcount(key, time.time(), "+inf") == 4:
                break
            await asyncio.sleep(0.2)  # polling for the expiry, bounded by the deadline
        assert counted.zcount(key, time.time(), "+inf") == 4
        for ws in on_b:
            await ws.close()

        more = [await open_on(a) for _ in range(6)]  # 4 + 6: at the limit, nobody closed
        status, _ = await call(a, "POST", "/api/notifications/read-all/", token=access)
        assert status == 200
        for ws in [*on_a[1:], *more]:
            assert (await receive_until(ws, "all_notifications_read"))[-1]["type"] == "all_notifications_read"
        await open_on(a)  # one more: the oldest still open goes
        assert await closed_with(on_a[1]) == 4429
    finally:
        for ws in opened:
            await ws.close()
        a.stop()
        b.stop()
