"""A graceful restart of a real daphne process: SIGTERM closes every socket with 1012, then the process exits."""

import asyncio
import signal
import socket

import pytest
import websockets
from channels.db import database_sync_to_async

from accounts.tests.factories import PASSWORD
from tests.live import Daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

CLOSE_SERVICE_RESTART = 1012


async def receive(ws) -> dict:
    import json

    return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


async def close_code(ws) -> int:
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        while True:
            await receive(ws)
    return closed.value.rcvd.code if closed.value.rcvd else None


@database_sync_to_async
def book_directly(*, patient, doctor, slots) -> list[int]:
    """Booked by the doctor for the patient (a patient alone may hold only a few of one day)."""
    import datetime

    from appointments.services import appointment_book

    today = datetime.date.today()
    return [
        appointment_book(
            actor=doctor.user, doctor=doctor, patient=patient, date=today, time=datetime.time.fromisoformat(slot)
        ).pk
        for slot in slots
    ]


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_sigterm_closes_every_socket_with_1012_and_a_resume_elsewhere_gets_every_event_once(patient, doctor):
    first = Daphne()
    try:
        access = await asyncio.to_thread(first.token, patient.email, PASSWORD)
        sockets = [await websockets.connect(f"{first.ws_url}?token={access}", open_timeout=10) for _ in range(4)]
        for ws in sockets:
            assert (await receive(ws))["type"] == "ready"
        status, _ = await asyncio.to_thread(first.book, access, doctor.pk, "07:00")
        assert status == 201
        last_seen = [[f for f in [await receive(ws) for _ in range(2)]][-1]["id"] for ws in sockets]
        assert len(set(last_seen)) == 1

        first.process.send_signal(signal.SIGTERM)
        assert [await close_code(ws) for ws in sockets] == [CLOSE_SERVICE_RESTART] * 4
        assert await asyncio.to_thread(refused, first.port)  # no longer accepting
        assert await asyncio.to_thread(first.process.wait, 10) == 0  # gone, and cleanly
    finally:
        first.stop()
    assert "Traceback" not in first.output()

    # Booked while the patient's client is between servers.
    booked = await book_directly(patient=patient, doctor=doctor, slots=("07:15", "07:30", "07:45"))

    second = Daphne()
    try:
        url = f"{second.ws_url}?token={access}&last_event_id={last_seen[0]}"
        async with websockets.connect(url, open_timeout=10) as ws:
            newest = (await receive(ws))["data"]["last_event_id"]
            replay = [await receive(ws) for _ in range(newest - last_seen[0])]
            assert [f["id"] for f in replay] == list(range(last_seen[0] + 1, newest + 1))  # each once, in order
            assert [f["data"]["id"] for f in replay if f["type"] == "appointment_updated"] == booked
            # And nothing after them: the next frame is a sentinel event made now, not a late duplicate.
            status, _ = await asyncio.to_thread(
                second.request, "POST", "/api/notifications/read-all/", {}, token=access
            )
            assert status == 200
            sentinel = await receive(ws)
            assert (sentinel["type"], sentinel["id"]) == ("all_notifications_read", newest + 1)
    finally:
        second.stop()
