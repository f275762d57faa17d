"""Video visits against real daphne processes: the call_signal relay across two processes on Redis."""

import asyncio
import json
import uuid

import pytest
import websockets
from django.utils import timezone

from tests.live import Daphne
from tests.test_live_realtime import call, needs_redis, receive, receive_until, token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 203.0.113.9 50400 typ host", "sdpMid": "0"}


def signal(appointment_id: int, payload: dict) -> str:
    return json.dumps({"type": "call_signal", "data": {"appointment_id": appointment_id, "signal": payload}})


@needs_redis
async def test_signals_cross_between_two_server_processes(patient, doctor):
    shared = {
        "CHANNEL_LAYER_PREFIX": uuid.uuid4().hex[:10],
        "TURN_URLS": "turn:127.0.0.1:3478",
        "TURN_SECRET": "live-secret",
    }
    a, b = Daphne(**shared), Daphne(**shared)
    try:
        patient_token, doctor_token = await token(b, patient), await token(a, doctor.user)
        now = timezone.localtime()
        status, visit = await call(
            a,
            "POST",
            "/api/appointments/",
            {
                "doctor": doctor.pk,
                "patient": patient.pk,
                "date": now.date().isoformat(),
                "time": now.strftime("%H:%M"),
                "mode": "VIDEO",
                "reason": "private detail",
            },
            token=doctor_token,
        )
        assert status == 201 and visit["mode"] == "VIDEO", visit

        status, body = await call(b, "GET", f"/api/appointments/{visit['id']}/call/", token=patient_token)
        assert status == 200 and body["peer"]["user_id"] == doctor.user.pk
        assert body["ice_servers"][0]["username"].endswith(f":{patient.pk}")

        async with (
            websockets.connect(f"{b.ws_url}?token={patient_token}", open_timeout=10) as patient_ws,
            websockets.connect(f"{a.ws_url}?token={doctor_token}", open_timeout=10) as doctor_ws,
        ):
            await receive(patient_ws), await receive(doctor_ws)
            assert await call(a, "POST", f"/api/appointments/{visit['id']}/call/ring/", token=doctor_token) == (200, {})
            rung = await receive_until(patient_ws, "new_notification")  # rung on A, heard on B
            assert rung[-1]["data"]["type"] == "VIDEO_CALL"

            offer = {"type": "offer", "sdp": "v=0\r\nc=IN IP4 203.0.113.9\r\n"}
            await doctor_ws.send(signal(visit["id"], offer))
            relayed = await receive_until(patient_ws, "call_signal")  # sent on A, relayed on B
            assert relayed[-1] == {
                "type": "call_signal",
                "data": {"appointment_id": visit["id"], "from_user_id": doctor.user.pk, "signal": offer},
            }
            for n in range(10):  # a burst of candidates, back from B to A, in order
                await patient_ws.send(signal(visit["id"], {**CANDIDATE, "n": n}))
            seen = [item for item in await receive_until(doctor_ws, "call_signal") if item["type"] == "call_signal"]
            while len(seen) < 10:
                item = await receive(doctor_ws)
                if item["type"] == "call_signal":
                    seen.append(item)
            assert [item["data"]["signal"]["n"] for item in seen] == list(range(10))
            assert all(item["data"]["from_user_id"] == patient.pk for item in seen)
            with pytest.raises(TimeoutError):  # the sender hears nothing of its own
                await asyncio.wait_for(patient_ws.recv(), timeout=0.3)
    finally:
        logs = a.output() + b.output()
        a.stop(), b.stop()
    assert "203.0.113.9" not in logs and "private detail" not in logs and "live-secret" not in logs
