import datetime
import time
from types import SimpleNamespace
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import RefreshToken

from appointments.models import Status
from core import groups, outbox
from mediconnect.asgi import application
from mediconnect.realtime import consumers
from notifications import replay, stream
from notifications.services import notifications_mark_read
from queues.models import QueueDay
from tests.support import QUEUE_KEYS
from tests.support.frames import check_frame
from tests.support.queries import counting_queries
from tests.support.wsutil import book, frame, frames_until, mark_all_read, open_socket, ready, token_for, transition

pytestmark = [pytest.mark.django_db(transaction=True)]


def is_type(kind):
    return lambda item: item["type"] == kind


async def test_ready_comes_first_with_who_the_socket_belongs_to(patient, doctor):
    socket = await open_socket(patient)
    assert await ready(socket) == {"user_id": patient.pk, "role": "PATIENT", "last_event_id": None}
    await socket.disconnect()

    await book(actor=patient, doctor=doctor)
    socket = await open_socket(patient)
    data = await ready(socket)
    assert isinstance(data["last_event_id"], int) and data["last_event_id"] > 0
    await socket.disconnect()


async def test_a_booking_reaches_both_of_a_patients_sockets_and_a_read_syncs(patient, doctor):
    phone, laptop = await open_socket(patient), await open_socket(patient)
    await ready(phone), await ready(laptop)

    await book(actor=doctor.user, doctor=doctor, patient=patient)

    for socket in (phone, laptop):
        notification = await frame(socket)
        assert notification["type"] == "new_notification"
        assert notification["data"]["type"] == "APPOINTMENT_CONFIRMED"
        assert notification["data"]["title"] == "Appointment Confirmed"
        assert notification["data"]["unread_count"] == 1
        updated = await frame(socket)
        assert updated["type"] == "appointment_updated"
        assert updated["data"]["status"] == "CONFIRMED" and updated["data"]["queue_number"] == 1
        assert updated["id"] > notification["id"]

    notification_id = notification["data"]["id"]
    await database_sync_to_async(notifications_mark_read)(user=patient, notification_id=notification_id)
    for socket in (phone, laptop):
        read = await frame(socket)
        assert read["type"] == "notification_read"
        assert read["data"] == {"notification_id": notification_id, "unread_count": 0}

    await mark_all_read(patient)
    for socket in (phone, laptop):
        assert await frame(socket) == {"type": "all_notifications_read", "data": {"unread_count": 0}, "id": mock.ANY}
        await socket.disconnect()


async def test_a_cancellation_is_seen_live_by_patient_and_doctor(patient, doctor):
    appointment = await book(actor=patient, doctor=doctor)
    patient_socket, doctor_socket = await open_socket(patient), await open_socket(doctor.user)
    await ready(patient_socket), await ready(doctor_socket)

    await transition(actor=patient, appointment=appointment, to_status=Status.CANCELLED)

    for socket in (patient_socket, doctor_socket):
        seen = await frames_until(socket, is_type("appointment_updated"))
        assert seen[-1]["data"]["id"] == appointment.pk
        assert seen[-1]["data"]["status"] == "CANCELLED"
        assert any(f["type"] == "new_notification" and f["data"]["type"] == "APPOINTMENT_CANCELLED" for f in seen)
        await socket.disconnect()


async def test_queue_join_gives_a_snapshot_then_updates_and_leave_stops_them(patient, doctor):
    await book(actor=patient, doctor=doctor, time="09:00")
    patient_socket, doctor_socket = await open_socket(patient), await open_socket(doctor.user)
    await ready(patient_socket), await ready(doctor_socket)

    await patient_socket.send_json_to({"type": "join_queue", "data": {"doctor_id": doctor.pk}})
    snapshot = await frame(patient_socket)
    assert snapshot["type"] == "queue_updated" and "id" not in snapshot
    assert set(snapshot["data"]) == QUEUE_KEYS
    assert (snapshot["data"]["current_queue"], snapshot["data"]["waiting"]) == (0, 1)
    assert not await database_sync_to_async(QueueDay.objects.exists)()  # watching made no queue row

    await doctor_socket.send_json_to(
        {"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": 1, "estimated_wait": 12}}
    )
    # Number 1 is the patient's: "It's your turn" (v1.2 queue alerts, stored first), then the queue itself.
    called, update = [await frame(patient_socket) for _ in range(2)]
    assert (called["type"], called["data"]["type"]) == ("new_notification", "QUEUE_CALLED")
    assert update["type"] == "queue_updated"
    assert (update["data"]["current_queue"], update["data"]["estimated_wait"], update["data"]["waiting"]) == (1, 12, 0)

    await patient_socket.send_json_to({"type": "leave_queue", "data": {"doctor_id": doctor.pk}})
    await doctor_socket.send_json_to({"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": 2}})
    await mark_all_read(patient)  # a sentinel: the next frame the patient gets must be this one
    assert (await frame(patient_socket))["type"] == "all_notifications_read"
    await patient_socket.disconnect()
    await doctor_socket.disconnect()


async def test_an_appointment_change_reaches_the_queues_watchers_in_order_with_the_queue_services(
    patient, patient2, doctor
):
    """A cancellation (appointments/ cannot read a queue: each process's hub reads it when told), then a
    queue update (its state read at commit): the watcher's queue moves forward only, to the update's state.

    The hub may read the queue for the cancellation after the update has committed too (then it sends the
    newer state twice); what it may never do is send a state older than one it sent."""
    from queues.services import queue_update

    await book(actor=patient, doctor=doctor, time="09:00")
    theirs = await book(actor=patient2, doctor=doctor, time="09:15")
    socket = await open_socket(patient)
    await ready(socket)
    await socket.send_json_to({"type": "join_queue", "data": {"doctor_id": doctor.pk}})
    assert (await frame(socket))["data"]["waiting_numbers"] == [1, 2]

    await transition(actor=patient2, appointment=theirs, to_status="CANCELLED")
    await database_sync_to_async(queue_update)(actor=doctor.user, doctor=doctor, current_queue=1, estimated_wait=5)

    # Per-user events and queue frames travel in different groups (on the pub/sub layer, different Redis
    # channels), so no user event marks the end here: the update's state does.
    seen = await frames_until(socket, lambda f: f["type"] == "queue_updated" and f["data"]["current_queue"] == 1)
    queues = [(f["data"]["current_queue"], f["data"]["waiting_numbers"]) for f in seen if f["type"] == "queue_updated"]
    in_order = [(0, [1]), (1, [])]  # after the cancellation, after the update
    assert queues[-1] == (1, []) and all(state in in_order for state in queues)
    assert [in_order.index(state) for state in queues] == sorted(in_order.index(state) for state in queues)
    await socket.disconnect()


async def queue_watchers(doctor, count: int):
    """`count` patients, each booked with `doctor` today and watching the queue: (patients, sockets)."""
    from accounts.tests.factories import UserFactory

    patients = await database_sync_to_async(UserFactory.create_batch)(count)
    for i, p in enumerate(patients):
        await book(actor=p, doctor=doctor, time=f"{8 + i // 4:02d}:{(i % 4) * 15:02d}")
    sockets = [await open_socket(p) for p in patients]
    for s in sockets:
        await ready(s)
        await s.send_json_to({"type": "join_queue", "data": {"doctor_id": doctor.pk}})
        assert (await frame(s))["type"] == "queue_updated"
    return patients, sockets


async def test_three_patients_in_one_queue_each_get_one_update(doctor):
    patients, sockets = await queue_watchers(doctor, 3)

    doctor_socket = await open_socket(doctor.user)
    await ready(doctor_socket)
    await doctor_socket.send_json_to({"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": 2}})

    # #2 hears it is their turn and #3 that they are next (v1.2 queue alerts), each before the update.
    alerts = [[], ["QUEUE_CALLED"], ["QUEUE_NEXT"]]
    for p, s, expected in zip(patients, sockets, alerts, strict=True):
        *told, update = await frames_until(s, is_type("queue_updated"))
        assert [f["data"]["type"] for f in told if f["type"] == "new_notification"] == expected
        assert len(told) == len(expected)
        assert update["data"]["current_queue"] == 2
        await mark_all_read(p)
        assert (await frame(s))["type"] == "all_notifications_read"  # and nothing in between
        await s.disconnect()
    await doctor_socket.disconnect()


async def test_resume_after_three_missed_bookings_gets_exactly_those_events_in_order(patient, doctor):
    socket = await open_socket(patient)
    await ready(socket)
    first = await book(actor=patient, doctor=doctor, time="08:00")
    seen = await frames_until(socket, is_type("appointment_updated"))
    last_id = seen[-1]["id"]
    await socket.disconnect()

    # Booked by the doctor: a patient may hold only two of one doctor's day themselves.
    missed = [await book(actor=doctor.user, patient=patient, doctor=doctor, time=f"0{h}:00") for h in (1, 2, 3)]

    socket = await open_socket(patient, query=f"last_event_id={last_id}")
    data = await ready(socket)
    replayed = [await frame(socket) for _ in range(6)]
    assert [f["type"] for f in replayed] == ["new_notification", "appointment_updated"] * 3
    assert [f["data"]["id"] for f in replayed if f["type"] == "appointment_updated"] == [a.pk for a in missed]
    ids = [f["id"] for f in replayed]
    assert ids == sorted(ids) and len(set(ids)) == 6 and ids[0] > last_id
    assert data["last_event_id"] == ids[-1]
    assert first.pk not in [f["data"].get("related_id") for f in replayed]

    await mark_all_read(patient)  # live again, right after the replay, with no duplicate
    live = await frame(socket)
    assert live["type"] == "all_notifications_read" and live["id"] > ids[-1]
    await socket.disconnect()


async def test_a_lost_push_is_filled_from_the_stream_in_order(patient, doctor):
    socket = await open_socket(patient)
    await ready(socket)
    with mock.patch("core.outbox._deliver"):  # the layer drops these pushes
        await book(actor=patient, doctor=doctor, time="08:00")
    await mark_all_read(patient)

    frames = [await frame(socket) for _ in range(3)]
    assert [f["type"] for f in frames] == ["new_notification", "appointment_updated", "all_notifications_read"]
    assert [f["id"] for f in frames] == sorted(f["id"] for f in frames)
    await socket.disconnect()


async def test_a_patient_leaves_the_queue_when_their_last_active_appointment_is_cancelled(patient, doctor):
    appointment = await book(actor=patient, doctor=doctor)
    patient_socket, doctor_socket = await open_socket(patient), await open_socket(doctor.user)
    await ready(patient_socket), await ready(doctor_socket)
    await patient_socket.send_json_to({"type": "join_queue", "data": {"doctor_id": doctor.pk}})
    assert (await frame(patient_socket))["type"] == "queue_updated"

    await transition(actor=doctor.user, appointment=appointment, to_status=Status.CANCELLED)
    await frames_until(patient_socket, is_type("appointment_updated"))
    await doctor_socket.send_json_to({"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": 7}})
    await mark_all_read(patient)
    after = await frames_until(patient_socket, is_type("all_notifications_read"))
    assert not [f for f in after if f["type"] == "queue_updated" and f["data"]["current_queue"] == 7]
    await patient_socket.disconnect()
    await doctor_socket.disconnect()


async def test_joining_or_running_a_queue_needs_the_right_to(patient, doctor, doctor2):
    socket = await open_socket(patient)
    await ready(socket)
    await socket.send_json_to({"type": "join_queue", "data": {"doctor_id": doctor.pk}})
    assert (await frame(socket))["data"]["code"] == "forbidden"
    await socket.send_json_to({"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": 3}})
    assert (await frame(socket))["data"] == {
        "code": "forbidden",
        "message": "Only this doctor or staff may run this queue.",
        "request": "update_queue",
    }
    await socket.send_json_to({"type": "join_queue", "data": {"doctor_id": 999999}})
    assert (await frame(socket))["data"]["code"] == "not_found"
    await socket.disconnect()

    other = await open_socket(doctor2.user)
    await ready(other)
    await other.send_json_to({"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": 3}})
    assert (await frame(other))["data"]["code"] == "forbidden"
    await other.disconnect()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"data": {}}',
        '{"type": "dance", "data": {}}',
        '{"type": "join_queue", "data": []}',
        '{"type": "join_queue", "data": {}}',
        '{"type": "join_queue", "data": {"doctor_id": "one"}}',
        '{"type": "update_queue", "data": {"doctor_id": 1, "current_queue": -1}}',
    ],
)
async def test_bad_frames_get_bad_request_and_the_socket_stays_open(patient, raw):
    socket = await open_socket(patient)
    await ready(socket)
    await socket.send_to(text_data=raw)
    error = await frame(socket)
    assert error["type"] == "error" and error["data"]["code"] == "bad_request" and error["data"]["message"]
    await mark_all_read(patient)
    assert (await frame(socket))["type"] == "all_notifications_read"
    await socket.disconnect()


async def test_a_frame_over_64_kib_closes_the_socket_with_1009(patient):
    socket = await open_socket(patient)
    await ready(socket)
    await socket.send_to(text_data='{"type": "join_queue", "data": {"pad": "' + "x" * 70_000 + '"}}')
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 1009}


async def test_a_flood_of_frames_is_rate_limited(patient, monkeypatch):
    # The limiter's clock stands still, so no frame is refilled while the flood is sent: exactly a
    # burst of 30 frames is read (each a bad frame: bad_request) and every one after it is refused.
    monkeypatch.setattr(consumers, "time", SimpleNamespace(monotonic=lambda: 1000.0, time=time.time))
    socket = await open_socket(patient)
    await ready(socket)
    for _ in range(40):
        await socket.send_to(text_data="{}")
    codes = [(await frame(socket))["data"]["code"] for _ in range(40)]
    assert codes == ["bad_request"] * 30 + ["rate_limited"] * 10
    await socket.disconnect()


async def refused(path, headers=()):
    communicator = WebsocketCommunicator(application, path, headers=[(b"host", b"127.0.0.1"), *headers])
    connected, _ = await communicator.connect(timeout=5)
    return not connected


async def test_sockets_without_a_valid_access_token_are_refused(patient):
    expired = token_for(patient, lifetime=datetime.timedelta(seconds=-5))
    refresh = await database_sync_to_async(lambda: str(RefreshToken.for_user(patient)))()
    assert await refused("/ws/")
    assert await refused("/ws/?token=garbage")
    assert await refused(f"/ws/?token={expired}")
    assert await refused(f"/ws/?token={refresh}")
    assert await refused("/ws/", headers=[(b"authorization", b"Bearer nope")])

    patient.is_active = False
    await database_sync_to_async(patient.save)()
    assert await refused(f"/ws/?token={token_for(patient)}")


async def test_the_authorization_header_is_accepted(patient):
    communicator = WebsocketCommunicator(
        application,
        "/ws/",
        headers=[(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token_for(patient)}".encode())],
    )
    assert (await communicator.connect(timeout=5))[0]
    assert (await ready(communicator))["user_id"] == patient.pk
    await communicator.disconnect()


async def test_origins_are_checked(patient, settings):
    settings.ALLOWED_ORIGINS = ["https://app.example"]
    token = token_for(patient)
    assert await refused(f"/ws/?token={token}", headers=[(b"origin", b"https://evil.example")])
    for origin in (b"https://app.example", b"http://127.0.0.1"):
        socket = await open_socket(patient, headers=[(b"origin", origin)])
        await ready(socket)
        await socket.disconnect()


async def test_the_server_closes_the_socket_with_4401_when_the_token_expires(patient):
    socket = await open_socket(token=token_for(patient, lifetime=datetime.timedelta(seconds=1)))
    await ready(socket)
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_closing_a_users_sockets_closes_all_of_theirs_with_4401_and_no_one_elses(patient, patient2):
    phone, laptop, other = await open_socket(patient), await open_socket(patient), await open_socket(patient2)
    for socket in (phone, laptop, other):
        await ready(socket)

    await database_sync_to_async(outbox.close_user_sockets)(patient.pk)

    for socket in (phone, laptop):
        assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    await mark_all_read(patient2)
    assert (await frame(other))["type"] == "all_notifications_read"
    await other.disconnect()


async def test_a_client_cannot_choose_whose_stream_it_hears(patient, patient2, doctor):
    socket = await open_socket(patient, query=f"user_id={patient2.pk}")
    assert (await ready(socket))["user_id"] == patient.pk
    await book(actor=patient2, doctor=doctor)
    await mark_all_read(patient)
    assert (await frame(socket))["type"] == "all_notifications_read"
    await socket.disconnect()


async def test_a_queue_update_reaches_every_watcher_once_and_not_those_who_left(doctor):
    _patients, watchers = await queue_watchers(doctor, 25)
    leaver = watchers.pop()
    await leaver.send_json_to({"type": "leave_queue", "data": {"doctor_id": doctor.pk}})

    doctor_socket = await open_socket(doctor.user)
    await ready(doctor_socket)
    for current in (3, 4):
        await doctor_socket.send_json_to(
            {"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": current}}
        )
    for s in watchers:
        seen = await frames_until(s, lambda f: f["type"] == "queue_updated" and f["data"]["current_queue"] == 4)
        assert [f["data"]["current_queue"] for f in seen if f["type"] == "queue_updated"] == [3, 4]
        # Only #3 and #4 (called, or next then called) and #5 (next) hear a queue alert.
        assert all(f["type"] in ("queue_updated", "new_notification") for f in seen)
        assert await s.receive_nothing(timeout=0.05)
    assert await leaver.receive_nothing(timeout=0.2)
    for s in [*watchers, leaver, doctor_socket]:
        await s.disconnect()


async def test_a_socket_connect_reads_the_database_once(patient, doctor):
    await book(actor=patient, doctor=doctor)  # a stream with events in it
    await ready(await open_socket(patient))  # the worker thread's database connection is open from here on
    async with counting_queries() as executed:
        socket = await open_socket(patient)
        await ready(socket)
    # The user (with their doctor profile) and the stream's newest event id, in one query; no writes.
    assert len(executed) == 1, executed
    await socket.disconnect()


async def test_a_token_of_a_deactivated_user_is_refused_at_the_handshake(patient):
    token = token_for(patient)
    patient.is_active = False
    await database_sync_to_async(patient.save)(update_fields=["is_active"])
    communicator = WebsocketCommunicator(application, f"/ws/?token={token}", headers=[(b"host", b"127.0.0.1")])
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


# Bounded per client (contract v1.1 "Socket limits and resync")


@database_sync_to_async
def record(user, count: int, *, type_: str = "notification_read", data=None) -> list[int]:
    """`count` events in the user's stream, as the services write them; returns their ids."""
    from django.db import transaction

    def data_of(n: int) -> dict:
        return data or {"notification_id": n + 1, "unread_count": 0}

    with transaction.atomic():
        events = stream.record_many([(user.pk, type_, data_of(n)) for n in range(count)])
    return [e.seq for e in events]


async def test_an_eleventh_socket_closes_the_users_oldest_with_4429_and_no_other(patient, patient2):
    from notifications import presence

    sockets = []
    for _ in range(10):
        sockets.append(await open_socket(patient))
        await ready(sockets[-1])
    other = await open_socket(patient2)
    await ready(other)

    newest = await open_socket(patient)
    await ready(newest)

    assert await sockets[0].receive_output(timeout=5) == {"type": "websocket.close", "code": 4429}
    assert presence.backend().open_sockets(patient.pk) == 10
    await mark_all_read(patient)
    for socket in [*sockets[1:], newest]:
        assert (await frame(socket))["type"] == "all_notifications_read"
    assert await sockets[0].receive_nothing(timeout=0.1)  # closed: it hears nothing more
    await mark_all_read(patient2)
    assert (await frame(other))["type"] == "all_notifications_read"
    for socket in [*sockets[1:], newest, other]:
        await socket.disconnect()


async def test_the_limit_is_a_setting(patient, settings):
    settings.WS_MAX_SOCKETS_PER_USER = 2
    first, second = await open_socket(patient), await open_socket(patient)
    await ready(first), await ready(second)
    third = await open_socket(patient)
    await ready(third)
    assert await first.receive_output(timeout=5) == {"type": "websocket.close", "code": 4429}
    await mark_all_read(patient)
    for socket in (second, third):
        assert (await frame(socket))["type"] == "all_notifications_read"
        await socket.disconnect()


async def test_a_resume_longer_than_the_replay_cap_gets_resync_instead(patient, settings):
    settings.WS_REPLAY_MAX = 5
    ids = await record(patient, 7)

    socket = await open_socket(patient, query="last_event_id=1")  # 6 to replay: one too many
    assert (await ready(socket))["last_event_id"] == ids[-1]
    assert await frame(socket) == {"type": "resync", "data": {"last_event_id": ids[-1]}}
    await mark_all_read(patient)  # live events follow, and nothing of the replay came before them
    live = await frame(socket)
    assert live["type"] == "all_notifications_read" and live["id"] == ids[-1] + 1
    await socket.disconnect()

    socket = await open_socket(patient, query=f"last_event_id={ids[2]}")  # 5 to replay: at the cap
    await ready(socket)
    assert [(await frame(socket))["id"] for _ in range(5)] == [*ids[3:], live["id"]]
    await socket.disconnect()


async def test_a_resume_from_events_no_longer_kept_gets_resync(patient, settings):
    from django.utils import timezone

    from notifications.models import Event

    ids = await record(patient, 4)
    await database_sync_to_async(Event.objects.filter(user=patient, seq=ids[0]).delete)()  # pruned

    socket = await open_socket(patient, query="last_event_id=0")
    await ready(socket)
    assert await frame(socket) == {"type": "resync", "data": {"last_event_id": ids[-1]}}
    await socket.disconnect()

    # Still stored but older than the retention: as good as pruned.
    settings.EVENT_RETENTION_DAYS = 30
    old = timezone.now() - datetime.timedelta(days=31)
    await database_sync_to_async(Event.objects.filter(user=patient, seq=ids[1]).update)(created_at=old)
    socket = await open_socket(patient, query=f"last_event_id={ids[0]}")
    await ready(socket)
    assert (await frame(socket))["type"] == "resync"
    await socket.disconnect()

    socket = await open_socket(patient, query=f"last_event_id={ids[1]}")  # the rest is kept: replayed
    await ready(socket)
    assert [(await frame(socket))["id"] for _ in range(2)] == ids[2:]
    await socket.disconnect()


async def test_a_replay_is_read_a_page_at_a_time_and_arrives_whole_and_in_order(patient):
    ids = await record(patient, 7)
    pages = []
    original = replay.replay_page

    def counting(user_id, after, upto, size=replay.REPLAY_PAGE):
        page = original(user_id, after, upto, size=3)
        pages.append(len(page))
        return page

    with mock.patch.object(replay, "replay_page", counting), mock.patch.object(replay, "REPLAY_PAGE", 3):
        socket = await open_socket(patient, query="last_event_id=0")
        await ready(socket)
        assert [(await frame(socket))["id"] for _ in range(7)] == ids
    assert pages == [3, 3, 1]
    await mark_all_read(patient)
    assert (await frame(socket))["id"] == ids[-1] + 1
    await socket.disconnect()


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "2147483648", "+1", " 1", "1e3", "٣"])
async def test_a_bad_last_event_id_gets_bad_request_and_no_replay(patient, value):
    from urllib.parse import quote

    await record(patient, 2)
    socket = await open_socket(patient, query=f"last_event_id={quote(value)}")
    await ready(socket)
    error = await frame(socket)
    assert error["type"] == "error" and error["data"]["code"] == "bad_request"
    await mark_all_read(patient)
    assert (await frame(socket))["type"] == "all_notifications_read"  # nothing replayed before it
    await socket.disconnect()


async def test_frames_are_utf8_text_not_escapes(patient):
    socket = await open_socket(patient)
    await ready(socket)
    notification = {
        "id": 1,
        "type": "APPOINTMENT_CONFIRMED",
        "title": "অ্যাপয়েন্টমেন্ট নিশ্চিত 🎉",
        "message": "",
        "related_id": None,
        "related_type": "",
        "is_read": False,
        "created_at": "2026-01-01T10:00:00+06:00",
        "unread_count": 1,
    }
    await record(patient, 1, type_="new_notification", data=notification)
    text = await socket.receive_from(timeout=5)
    assert "অ্যাপয়েন্টমেন্ট নিশ্চিত 🎉" in text and "\\u" not in text
    check_frame(text)
    await socket.disconnect()

    socket = await open_socket(patient, query="last_event_id=0")  # replayed from the store alike
    await ready(socket)
    assert "নিশ্চিত 🎉" in check_frame(await socket.receive_from(timeout=5))["data"]["title"]
    await socket.disconnect()


async def test_an_error_in_a_handler_becomes_an_error_frame_and_the_socket_lives_on(patient, doctor, caplog):
    socket = await open_socket(patient)
    await ready(socket)
    with mock.patch("mediconnect.realtime.consumers._join", side_effect=RuntimeError("reason: private detail")):
        await socket.send_json_to({"type": "join_queue", "data": {"doctor_id": doctor.pk}})
        error = await frame(socket)
    assert error["type"] == "error" and error["data"]["code"] == "bad_request"  # one of the contract's codes
    assert error["data"]["message"] == "The server could not handle this frame; try again later."
    assert "private" not in error["data"]["message"] and "Traceback" not in error["data"]["message"]
    assert "RuntimeError" in caplog.text and "private detail" not in caplog.text

    await mark_all_read(patient)
    assert (await frame(socket))["type"] == "all_notifications_read"
    await socket.send_json_to({"type": "join_queue", "data": {"doctor_id": doctor.pk}})
    assert (await frame(socket))["data"]["code"] == "forbidden"  # handlers still answer
    await socket.disconnect()


def holds_nothing(user_id: int) -> bool:
    from mediconnect.realtime.hub import hub

    current = hub()
    group = current.groups.get(groups.user_group(user_id))
    return (
        not (group and group.sinks)
        and current.users[user_id] == 0
        and user_id not in current.sockets.values()
        and user_id not in current._arrived
    )


@pytest.mark.parametrize(
    ("error", "close_code"),
    [(RuntimeError("a bug"), None), ("outage", 4503)],
    ids=["bug: refused at the handshake", "database outage: accepted and closed, reconnect later"],
)
async def test_a_connect_that_fails_after_joining_leaves_nothing_behind(patient, caplog, error, close_code):
    from django.db import OperationalError

    error = OperationalError("database gone") if error == "outage" else error
    with mock.patch("mediconnect.realtime.consumers._open_stream", side_effect=error):
        communicator = WebsocketCommunicator(application, f"/ws/?token={token_for(patient)}", headers=[(b"host", b"x")])
        connected, _ = await communicator.connect(timeout=5)
        if close_code is None:
            assert not connected
        else:
            assert connected
            assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": close_code}
    assert holds_nothing(patient.pk)
    assert type(error).__name__ in caplog.text

    socket = await open_socket(patient)  # and the next one is served as usual
    await ready(socket)
    assert not holds_nothing(patient.pk)
    await socket.disconnect()


async def test_a_socket_whose_consumer_crashes_releases_its_groups_presence_and_count(patient):
    socket = await open_socket(patient)
    await ready(socket)
    assert not holds_nothing(patient.pk)
    with mock.patch("mediconnect.realtime.consumers.EventConsumer.websocket_receive", side_effect=RecursionError):
        await socket.send_to(text_data="{}")
        with pytest.raises(RecursionError):
            await socket.receive_output(timeout=5)
    assert holds_nothing(patient.pk)


async def test_a_lost_gap_longer_than_the_replay_cap_gets_resync_then_live_events(patient, settings):
    settings.WS_REPLAY_MAX = 2
    socket = await open_socket(patient)
    await ready(socket)
    with mock.patch("core.outbox._deliver"):  # the layer drops these pushes
        ids = await record(patient, 3)
    await mark_all_read(patient)
    assert await frame(socket) == {"type": "resync", "data": {"last_event_id": ids[-1]}}
    assert (await frame(socket))["id"] == ids[-1] + 1
    await socket.disconnect()


async def test_when_the_layer_returns_sockets_get_what_they_missed_from_the_store_and_the_queue_as_it_is(
    patient, doctor
):
    from mediconnect.realtime.hub import hub
    from queues.services import queue_update

    await book(actor=patient, doctor=doctor, time="09:00")
    socket = await open_socket(patient)
    await ready(socket)
    await socket.send_json_to({"type": "join_queue", "data": {"doctor_id": doctor.pk}})
    assert (await frame(socket))["data"]["current_queue"] == 0

    # The layer is away: what is committed meanwhile is stored, but no push gets through.
    with mock.patch("core.outbox._deliver"):
        missed = await book(actor=doctor.user, doctor=doctor, patient=patient, time="10:00")
        await database_sync_to_async(queue_update)(actor=doctor.user, doctor=doctor, current_queue=1, estimated_wait=9)

    hub()._layer_lost()  # what a failed receive or a restarted Redis tells the hub
    # The queue's state and the four missed events, in any order: the booking's two, then the queue's
    # alerts (number 1 is this patient's, and so is number 2, first in line).
    seen = [await frame(socket) for _ in range(5)]
    events = [f for f in seen if "id" in f]
    assert [f["type"] for f in events] == ["new_notification", "appointment_updated", *["new_notification"] * 2]
    assert events[1]["data"]["id"] == missed.pk and events[1]["id"] == events[0]["id"] + 1
    assert {f["data"]["type"] for f in events[2:]} == {"QUEUE_CALLED", "QUEUE_NEXT"}
    (queue,) = [f for f in seen if f["type"] == "queue_updated"]
    assert (queue["data"]["current_queue"], queue["data"]["estimated_wait"]) == (1, 9)

    await mark_all_read(patient)  # live again, and nothing came twice
    assert (await frame(socket))["type"] == "all_notifications_read"
    await socket.disconnect()
