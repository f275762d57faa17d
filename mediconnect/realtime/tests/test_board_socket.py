"""A display board's socket: read-only, numbers only, its own doctors' queues and nothing else."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.tests.factories import DoctorFactory
from mediconnect.asgi import application
from queues.models import Board
from queues.services import board_doctors_changed, board_rotate_token, queue_call_next, queue_update
from queues.tests.factories import BoardFactory
from tests.support.wsutil import TIMEOUT, book, frame, open_socket, ready

pytestmark = [pytest.mark.django_db(transaction=True)]


@database_sync_to_async
def make_board(*doctors, **fields) -> Board:
    return BoardFactory(doctors=doctors, **fields)


def board_communicator(token: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/?board={token}", headers=[(b"host", b"127.0.0.1")])


async def open_board(board: Board) -> WebsocketCommunicator:
    communicator = board_communicator(board.token)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected, "board socket refused"
    return communicator


async def opened(board: Board, count: int) -> tuple[WebsocketCommunicator, list[dict]]:
    """A board socket past its `ready`, with the `count` queue frames that follow it."""
    socket = await open_board(board)
    assert await ready(socket) == {"user_id": None, "role": "BOARD", "last_event_id": None}
    return socket, [await frame(socket) for _ in range(count)]


async def test_a_board_gets_ready_then_every_doctors_queue_with_names_and_next_numbers(
    patient, patient2, doctor, doctor2
):
    for i, who in enumerate([patient, patient2, patient, patient2]):
        await book(actor=who, doctor=doctor, time=f"1{i}:00")
    board = await make_board(doctor, doctor2)

    socket, queues = await opened(board, 2)

    assert [q["type"] for q in queues] == ["queue_updated", "queue_updated"]
    by_doctor = {q["data"]["doctor_id"]: q["data"] for q in queues}
    assert by_doctor[doctor.pk]["doctor_name"] == "Dr. Doc"
    assert by_doctor[doctor.pk]["waiting_numbers"] == [1, 2, 3, 4]
    assert by_doctor[doctor.pk]["next"] == [1, 2, 3]
    assert (by_doctor[doctor2.pk]["doctor_name"], by_doctor[doctor2.pk]["next"]) == ("Dr. Other", [])
    text = str(queues)
    assert patient.name not in text and patient2.name not in text
    await socket.disconnect()


async def test_a_booking_for_today_shows_on_the_board(patient, patient2, doctor):
    """A booking tells the queue's watchers only that it changed; the board's process reads it once."""
    await book(actor=patient, doctor=doctor, time="09:00")
    board = await make_board(doctor)
    socket, [first] = await opened(board, 1)
    assert first["data"]["next"] == [1]

    await book(actor=patient2, doctor=doctor, time="09:15")
    booked = (await frame(socket))["data"]
    assert (booked["doctor_name"], booked["next"], booked["waiting"]) == ("Dr. Doc", [1, 2], 2)
    await socket.disconnect()


async def test_a_board_follows_queue_updates_and_call_next_live(patient, patient2, doctor, doctor2):
    await book(actor=patient, doctor=doctor, time="09:00")
    await book(actor=patient2, doctor=doctor, time="09:15")
    board = await make_board(doctor, doctor2)
    socket, _ = await opened(board, 2)

    await database_sync_to_async(queue_call_next)(actor=doctor.user, doctor=doctor)
    called = await frame(socket)
    assert called["type"] == "queue_updated"
    assert (called["data"]["doctor_id"], called["data"]["current_queue"]) == (doctor.pk, 1)
    assert (called["data"]["doctor_name"], called["data"]["next"]) == ("Dr. Doc", [2])

    await database_sync_to_async(queue_update)(actor=doctor2.user, doctor=doctor2, current_queue=7, estimated_wait=9)
    updated = (await frame(socket))["data"]
    assert (updated["doctor_id"], updated["current_queue"], updated["estimated_wait"]) == (doctor2.pk, 7, 9)
    assert (updated["doctor_name"], updated["next"]) == ("Dr. Other", [])
    await socket.disconnect()


async def test_two_boards_of_one_doctor_get_the_same_frame(patient, doctor, doctor2):
    await book(actor=patient, doctor=doctor, time="09:00")
    first, _ = await opened(await make_board(doctor), 1)
    second, _ = await opened(await make_board(doctor, doctor2, name="Hall"), 2)

    await database_sync_to_async(queue_call_next)(actor=doctor.user, doctor=doctor)

    a, b = await frame(first), await frame(second)
    assert a == b and a["data"]["current_queue"] == 1 and a["data"]["doctor_name"] == "Dr. Doc"
    await first.disconnect()
    await second.disconnect()


async def test_a_board_socket_is_read_only(doctor):
    board = await make_board(doctor)
    socket, _ = await opened(board, 1)

    for sent in (
        {"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": 5}},
        {"type": "join_queue", "data": {"doctor_id": doctor.pk}},
        "not json",
    ):
        if isinstance(sent, dict):
            await socket.send_json_to(sent)
        else:
            await socket.send_to(text_data=sent)
        refused = await frame(socket)
        assert refused["type"] == "error" and refused["data"]["code"] == "forbidden"

    # Nothing changed: the doctor's next move is from 0.
    await database_sync_to_async(queue_update)(actor=doctor.user, doctor=doctor, current_queue=1)
    assert (await frame(socket))["data"]["current_queue"] == 1
    await socket.disconnect()


@pytest.mark.parametrize("token", ["no-such-board", "bad token!", ""])
async def test_an_unknown_board_is_refused_like_a_bad_token(doctor, token):
    await make_board(doctor)
    connected, _ = await board_communicator(token).connect(timeout=TIMEOUT)
    assert not connected


async def test_a_board_hears_neither_other_doctors_queues_nor_anyones_events(patient, doctor, doctor2):
    board = await make_board(doctor)
    socket, _ = await opened(board, 1)
    patient_socket = await open_socket(patient)
    await ready(patient_socket)

    # Another doctor's queue, and a booking (events for the patient and the other doctor).
    await book(actor=patient, doctor=doctor2, time="09:00")
    await database_sync_to_async(queue_update)(actor=doctor2.user, doctor=doctor2, current_queue=3)
    assert (await frame(patient_socket))["type"] == "new_notification"  # the events were pushed

    # A sentinel on the board's own doctor: it must be the next frame the board gets.
    await database_sync_to_async(queue_update)(actor=doctor.user, doctor=doctor, current_queue=2)
    sentinel = await frame(socket)
    assert sentinel["type"] == "queue_updated"
    assert (sentinel["data"]["doctor_id"], sentinel["data"]["current_queue"]) == (doctor.pk, 2)
    await socket.disconnect()
    await patient_socket.disconnect()


async def test_rotating_the_token_closes_the_boards_sockets_and_refuses_the_old_one(doctor):
    board = await make_board(doctor)
    old = board.token
    socket, _ = await opened(board, 1)

    await database_sync_to_async(board_rotate_token)(board=board)

    assert await socket.receive_output(TIMEOUT) == {"type": "websocket.close", "code": 4401}
    connected, _ = await board_communicator(old).connect(timeout=TIMEOUT)
    assert not connected
    fresh, _ = await opened(board, 1)
    await fresh.disconnect()


async def test_changing_a_boards_doctors_closes_its_sockets_so_they_reconnect_to_the_new_set(doctor):
    board = await make_board(doctor)
    socket, _ = await opened(board, 1)
    other = await database_sync_to_async(DoctorFactory)(user__name="Dr. New")

    await database_sync_to_async(board.doctors.add)(other)
    await database_sync_to_async(board_doctors_changed)(board=board)

    assert await socket.receive_output(TIMEOUT) == {"type": "websocket.close", "code": 4409}
    again, queues = await opened(board, 2)
    assert {q["data"]["doctor_name"] for q in queues} == {"Dr. Doc", "Dr. New"}
    await again.disconnect()


async def test_a_board_socket_counts_toward_no_user_and_takes_no_presence(doctor, settings):
    from mediconnect.realtime.hub import hub

    board = await make_board(doctor)
    sockets = [(await opened(board, 1))[0] for _ in range(3)]

    assert not hub().users and not hub().sockets
    for socket in sockets:
        await socket.disconnect()
