"""The socket's `call_signal`: relayed live to the other participant's sockets, never stored, never echoed."""

import datetime
import logging

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from appointments.models import Mode, Status
from appointments.services import appointment_book, appointment_transition
from mediconnect.realtime import consumers
from tests.support.queries import counting_queries
from tests.support.wsutil import frame, frames_until, open_socket, ready

pytestmark = [pytest.mark.django_db(transaction=True)]

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 4611 2 IN IP4 192.0.2.55\r\nc=IN IP4 192.0.2.55\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 198.51.100.7 54400 typ host", "sdpMid": "0"}


@database_sync_to_async
def video_visit(patient, doctor, *, date=None, time=None, mode=Mode.VIDEO):
    """A CONFIRMED video visit whose window is open now (today, at the current minute) unless told otherwise."""
    now = timezone.localtime()
    return appointment_book(
        actor=patient,
        doctor=doctor,
        date=date or now.date(),
        time=time or now.time().replace(second=0, microsecond=0),
        reason="chest pain",
        mode=mode,
    )


def signal_frame(appointment, signal):
    return {"type": "call_signal", "data": {"appointment_id": appointment.pk, "signal": signal}}


async def error(socket) -> dict:
    """The next error frame (events about the appointment may come first)."""
    return (await frames_until(socket, lambda item: item["type"] == "error"))[-1]["data"]


async def test_a_signal_reaches_both_of_the_peers_sockets_and_not_the_sender(patient, doctor):
    visit = await video_visit(patient, doctor)
    laptop, phone, sender = await open_socket(patient), await open_socket(patient), await open_socket(doctor.user)
    for socket in (laptop, phone, sender):
        await ready(socket)

    await sender.send_json_to(signal_frame(visit, OFFER))

    for socket in (laptop, phone):
        relayed = await frame(socket)
        assert relayed == {
            "type": "call_signal",
            "data": {"appointment_id": visit.pk, "from_user_id": doctor.user.pk, "signal": OFFER},
        }
        assert "id" not in relayed
    assert await sender.receive_nothing(timeout=0.2)

    # And back: the patient's answer reaches the doctor.
    await phone.send_json_to(signal_frame(visit, {"type": "answer", "sdp": "v=0"}))
    answer = await frame(sender)
    assert answer["data"]["from_user_id"] == patient.pk and answer["data"]["signal"]["type"] == "answer"
    for socket in (laptop, phone, sender):
        await socket.disconnect()


async def test_a_third_user_is_forbidden_and_an_unseen_appointment_not_found(patient, patient2, doctor, admin_user):
    visit = await video_visit(patient, doctor)
    staff, stranger = await open_socket(admin_user), await open_socket(patient2)
    await ready(staff), await ready(stranger)

    await staff.send_json_to(signal_frame(visit, OFFER))
    assert (await error(staff))["code"] == "forbidden"
    await stranger.send_json_to(signal_frame(visit, OFFER))
    assert (await error(stranger))["code"] == "not_found"
    await stranger.send_json_to({"type": "call_signal", "data": {"appointment_id": 2**31 - 1, "signal": {}}})
    assert (await error(stranger))["code"] == "not_found"
    await staff.disconnect(), await stranger.disconnect()


async def test_outside_the_window_or_not_a_confirmed_video_visit_is_forbidden(patient, doctor):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    later = await video_visit(patient, doctor, date=tomorrow, time=datetime.time(12, 0))
    in_person = await video_visit(patient, doctor, mode=Mode.IN_PERSON)
    socket = await open_socket(doctor.user)
    await ready(socket)
    for appointment in (later, in_person):
        await socket.send_json_to(signal_frame(appointment, OFFER))
        assert (await error(socket))["code"] == "forbidden"
    await socket.disconnect()


async def test_a_cancelled_call_is_refused_once_the_kept_decision_runs_out(patient, doctor, monkeypatch):
    visit = await video_visit(patient, doctor)
    peer, socket = await open_socket(patient), await open_socket(doctor.user)
    await ready(peer), await ready(socket)
    await socket.send_json_to(signal_frame(visit, CANDIDATE))
    assert (await frame(peer))["type"] == "call_signal"

    await database_sync_to_async(appointment_transition)(actor=patient, appointment=visit, to_status=Status.CANCELLED)
    monkeypatch.setattr(consumers, "CALL_ACCESS_SECONDS", 0.0)
    await socket.send_json_to(signal_frame(visit, CANDIDATE))
    assert (await error(socket))["code"] == "forbidden"
    await peer.disconnect(), await socket.disconnect()


async def test_a_burst_of_candidates_reads_the_database_once(patient, doctor):
    visit = await video_visit(patient, doctor)
    peer, socket = await open_socket(patient), await open_socket(doctor.user)
    await ready(peer), await ready(socket)
    async with counting_queries() as queries:
        for n in range(12):
            await socket.send_json_to(signal_frame(visit, {**CANDIDATE, "n": n}))
        for n in range(12):
            assert (await frame(peer))["data"]["signal"]["n"] == n
    assert len(queries) == 1
    await peer.disconnect(), await socket.disconnect()


async def test_a_signal_over_16_kib_or_not_an_object_is_a_bad_request(patient, doctor):
    visit = await video_visit(patient, doctor)
    peer, socket = await open_socket(patient), await open_socket(doctor.user)
    await ready(peer), await ready(socket)

    await socket.send_json_to(signal_frame(visit, {"sdp": "x" * (16 * 1024)}))
    assert (await error(socket))["code"] == "bad_request"
    await socket.send_json_to(signal_frame(visit, "v=0"))
    assert (await error(socket))["code"] == "bad_request"
    # Just under the limit (with the frame around it over 16 KiB) goes through.
    fits = {"sdp": "x" * (16 * 1024 - len('{"sdp":""}'))}
    await socket.send_json_to(signal_frame(visit, fits))
    assert (await frame(peer))["data"]["signal"] == fits
    await peer.disconnect(), await socket.disconnect()


async def test_signals_are_never_stored_a_resume_replays_none(patient, doctor):
    visit = await video_visit(patient, doctor)
    sender = await open_socket(doctor.user)
    await ready(sender)
    await sender.send_json_to(signal_frame(visit, OFFER))  # the patient is offline: it is lost, as it should be
    await sender.send_json_to({"type": "leave_queue", "data": {"doctor_id": 1}})  # a frame after it, handled
    assert await sender.receive_nothing(timeout=0.2)

    resumed = await open_socket(patient, query="last_event_id=0")
    await ready(resumed)
    replayed = []
    while not await resumed.receive_nothing(timeout=0.3):
        replayed.append(await frame(resumed))
    assert replayed and "call_signal" not in {item["type"] for item in replayed}  # the booking's events only
    await resumed.disconnect(), await sender.disconnect()


async def test_signals_and_their_refusals_stay_out_of_logs_and_errors(patient, patient2, doctor, caplog):
    visit = await video_visit(patient, doctor)
    peer, socket, stranger = await open_socket(patient), await open_socket(doctor.user), await open_socket(patient2)
    await ready(peer), await ready(socket), await ready(stranger)
    with caplog.at_level(logging.DEBUG):
        await socket.send_json_to(signal_frame(visit, OFFER))
        await frame(peer)
        await stranger.send_json_to(signal_frame(visit, OFFER))
        refused = await error(stranger)
        await socket.send_json_to(signal_frame(visit, {**OFFER, "pad": "y" * 17000}))
        too_big = await error(socket)
    for text in (caplog.text, str(refused), str(too_big)):
        assert "192.0.2.55" not in text and "chest pain" not in text
    await peer.disconnect(), await socket.disconnect(), await stranger.disconnect()
