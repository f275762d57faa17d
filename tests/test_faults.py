"""Breaking things on purpose: Redis stopped, hung and restarted, a server killed, PostgreSQL stopped,
a client that never reads. Each test starts its own services (tests/faults.py) and daphne processes,
and checks what a user would notice and that every socket got exactly the stored stream.
"""

import asyncio
import concurrent.futures
import contextlib
import json
import socket
import threading
import urllib.error

import pytest
import websockets

from tests.faults import PASSWORD, Client, next_slot, retried_while_unavailable, stored_events

pytestmark = [pytest.mark.live]

# A booking whose pushes wait on a hung Redis once took 20 s; the contract's "costs the request nothing
# noticeable" is bounded here by the client's patience, not measured.
PATIENT_TIMEOUT = 8


async def login(server, account) -> str:
    return await asyncio.to_thread(server.token, account.email, PASSWORD)


async def book(server, token, doctor, *, patient=None, slot=None, patience: float = 10, reason: str = ""):
    """Book through the API; returns the answer (status, content type, text)."""
    date, at = slot or next_slot()
    body = {"doctor": doctor.doctor_id, "date": date, "time": at, "reason": reason}
    if patient is not None:
        body["patient"] = patient.id
    return await asyncio.to_thread(server.fetch, "POST", "/api/appointments/", body, token, timeout=patience)


def assert_got_the_stored_stream(client: Client, pg, account) -> None:
    """Exactly the stored events after the point the client started from: none lost, none twice, in order."""
    stored = stored_events(pg, account.id, after=client.start_id)
    assert client.ids == [seq for seq, _, _ in stored], f"got {client.ids}, stored {[s for s, _, _ in stored]}"
    got = [(f["id"], f["type"]) for f in client.frames if "id" in f]
    assert got == [(seq, kind) for seq, kind, _ in stored]


def clean_refusal(exc: BaseException) -> bool:
    """A handshake turned away as the contract allows during an outage: a refusal (403, or 503 "try
    later"), or a close with 1013 ("try again later") before any frame; not a 500 nor a 1011 crash."""
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        return exc.response.status_code in (403, 503)
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        return exc.rcvd is not None and exc.rcvd.code in (1013, 4503)
    return False


async def handshake(server, token: str) -> dict | BaseException:
    """Open a socket: its first frame, or the exception that refused or closed it."""
    try:
        async with websockets.connect(f"{server.ws_url}?token={token}", open_timeout=15) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
    except (websockets.exceptions.WebSocketException, OSError, TimeoutError) as exc:
        return exc


LAYERS = ["core", "pubsub"]


async def open_patient_socket_with_a_booking(fault_server, users, doctor, layer):
    server = await asyncio.to_thread(fault_server, CHANNEL_LAYER=layer)
    patient = users.patient()
    patient_token, doctor_token = await login(server, patient), await login(server, doctor)
    client = await Client(server, patient_token).start()
    first = await book(server, patient_token, doctor)
    assert first.status == 201, first.text
    await client.wait_for_appointment(first.json()["id"])
    return server, patient, patient_token, doctor_token, client


@pytest.mark.parametrize("layer", LAYERS)
async def test_redis_restarted_under_open_sockets_live_events_resume_and_none_is_lost(
    layer, fault_server, redis_server, pg, users
):
    doctor = users.doctors[0]
    server, patient, patient_token, doctor_token, client = await open_patient_socket_with_a_booking(
        fault_server, users, doctor, layer
    )

    await asyncio.to_thread(redis_server.stop)
    during = await book(server, doctor_token, doctor, patient=patient, patience=PATIENT_TIMEOUT)
    assert during.status == 201, during.text  # the booking is stored; only its push could not go out
    outage_handshake = await handshake(server, patient_token)
    assert isinstance(outage_handshake, dict) or clean_refusal(outage_handshake), repr(outage_handshake)
    await asyncio.to_thread(redis_server.start)

    # Live updates come back: of bookings made one after another once Redis is up, one soon reaches
    # the open socket (each is given 4 s; the server may take a moment to find Redis again) ...
    for _attempt in range(8):
        after = await book(server, doctor_token, doctor, patient=patient)
        assert after.status == 201, after.text
        with contextlib.suppress(AssertionError):
            await client.wait_for_appointment(after.json()["id"], within=4)
            break
    else:
        pytest.fail("no booking reached the open socket in 32 s after Redis returned")
    # ... bringing the one missed while Redis was down ahead of itself, and nothing twice.
    assert during.json()["id"] in [f["data"]["id"] for f in client.of_type("appointment_updated")]
    assert_got_the_stored_stream(client, pg, patient)
    assert (await handshake(server, patient_token))["type"] == "ready"
    await client.stop()


@pytest.mark.parametrize("layer", LAYERS)
async def test_when_redis_returns_open_sockets_catch_up_with_no_other_change(
    layer, fault_server, redis_server, pg, users
):
    doctor = users.doctors[1]
    server, patient, _, doctor_token, client = await open_patient_socket_with_a_booking(
        fault_server, users, doctor, layer
    )
    await client.send({"type": "join_queue", "data": {"doctor_id": doctor.doctor_id}})
    await client.wait_for(lambda c: c.of_type("queue_updated"), what="the queue snapshot")
    now_serving = client.of_type("queue_updated")[-1]["data"]["current_queue"] + 7

    await asyncio.to_thread(redis_server.stop)
    during = await book(server, doctor_token, doctor, patient=patient, patience=PATIENT_TIMEOUT)
    assert during.status == 201, during.text
    moved = await asyncio.to_thread(
        server.fetch,
        "POST",
        f"/api/queues/{doctor.doctor_id}/",
        {"current_queue": now_serving},
        doctor_token,
        timeout=PATIENT_TIMEOUT,
    )
    assert moved.status == 200, moved.text
    await asyncio.to_thread(redis_server.start)

    # Nothing else changes: the patient's open page must still come to show the booking made
    # meanwhile, and the number the doctor set.
    await client.wait_for(
        lambda c: c.of_type("queue_updated")[-1]["data"]["current_queue"] == now_serving,
        within=30,
        what=f"now serving {now_serving} after Redis returned",
    )
    await client.wait_for_appointment(during.json()["id"], within=10)
    assert_got_the_stored_stream(client, pg, patient)
    await client.stop()


async def test_redis_hung_during_bookings_costs_the_booking_nothing_and_loses_no_event(
    fault_server, redis_server, pg, users
):
    server = await asyncio.to_thread(fault_server)
    patient, doctor = users.patient(), users.doctors[2]
    patient_token, doctor_token = await login(server, patient), await login(server, doctor)
    client = await Client(server, patient_token).start()

    redis_server.hang()
    try:
        answers = []
        for _ in range(2):
            try:
                answers.append(await book(server, doctor_token, doctor, patient=patient, patience=PATIENT_TIMEOUT))
            except (TimeoutError, urllib.error.URLError):
                pytest.fail(f"a booking with Redis hung took more than {PATIENT_TIMEOUT} s to answer")
    finally:
        redis_server.resume()
    assert [a.status for a in answers] == [201, 201], [a.text for a in answers]

    sentinel = await book(server, doctor_token, doctor, patient=patient)
    assert sentinel.status == 201, sentinel.text
    await client.wait_for_appointment(sentinel.json()["id"], within=30)
    received = [f["data"]["id"] for f in client.of_type("appointment_updated")]
    assert [a.json()["id"] for a in answers] + [sentinel.json()["id"]] == received
    assert_got_the_stored_stream(client, pg, patient)
    await client.stop()


async def test_a_server_killed_with_sigkill_its_clients_resume_on_a_new_process_exactly_once(fault_server, pg, users):
    sockets_side, api_side = await asyncio.to_thread(fault_server), await asyncio.to_thread(fault_server)
    patients, doctor = [users.patient() for _ in range(3)], users.doctors[3]
    tokens = [await login(api_side, p) for p in patients]
    clients = [await Client(sockets_side, t).start() for t in tokens]

    async def keep_booking(rounds: int) -> list[int]:
        booked = []
        for _ in range(rounds):
            for token in tokens:
                answer = await book(api_side, token, doctor)
                assert answer.status == 201, answer.text
                booked.append(answer.json()["id"])
        return booked

    await clients[0].wait_for_appointment((await keep_booking(1))[0])
    flowing = asyncio.ensure_future(keep_booking(3))  # events keep coming while the server dies
    await asyncio.to_thread(sockets_side.kill)
    replacement = await asyncio.to_thread(fault_server, port=sockets_side.port)  # restarted where it was
    await flowing
    # A sentinel after the replay: a late duplicate of anything earlier would arrive before it.
    for token, client in zip(tokens, clients, strict=True):
        answer = await book(replacement, token, doctor)
        assert answer.status == 201, answer.text
        await client.wait_for_appointment(answer.json()["id"], within=30)
    for patient, client in zip(patients, clients, strict=True):
        assert client.connections >= 2  # it lost its socket and came back
        assert_got_the_stored_stream(client, pg, patient)
        await client.stop()


async def test_postgres_stopped_during_a_handshake_refuses_cleanly_and_recovers(fault_server, pg, users):
    # A request that finds the database gone waits DB_POOL_TIMEOUT for a connection (the pool checks
    # each one it lends), and a handshake must be refused within daphne's 5 s handshake timeout.
    server = await asyncio.to_thread(fault_server, DB_POOL_TIMEOUT=2)
    patient, doctor = users.patient(), users.doctors[0]
    patient_token = await login(server, patient)

    await asyncio.to_thread(pg.stop, "fast")
    refused = await handshake(server, patient_token)
    assert clean_refusal(refused), repr(refused)
    answer = await asyncio.to_thread(server.fetch, "GET", "/api/appointments/", None, patient_token, timeout=30)
    assert answer.status == 503 and answer.content_type.startswith("application/json"), (answer.status, answer.text)
    await asyncio.to_thread(pg.start)
    # The pool reconnects on its backoff (one attempt 1, 2, 4 s … after the last): the API answers 503
    # with Retry-After until then, and a client retries.
    back = await asyncio.to_thread(
        retried_while_unavailable, lambda: server.fetch("GET", "/api/appointments/", None, patient_token)
    )
    assert back.status == 200, (back.status, back.text)

    # Back: the first socket and the first booking work, and the booking reaches the socket.
    client = await Client(server, patient_token).start()
    assert client.connections == 1 and not client.closes
    booked = await book(server, patient_token, doctor)
    assert booked.status == 201, booked.text
    await client.wait_for_appointment(booked.json()["id"])
    assert_got_the_stored_stream(client, pg, patient)
    await client.stop()


async def test_postgres_stopped_during_bookings_leaves_nothing_half_written(fault_server, pg, users):
    # A short pool wait, so the bookings that find the database gone answer quickly.
    server = await asyncio.to_thread(fault_server, DB_POOL_TIMEOUT=2)
    patient, doctor = users.patient(), users.doctors[1]
    patient_token = await login(server, patient)
    client = await Client(server, patient_token).start()
    date, _ = next_slot()
    slots = [(date, next_slot()[1]) for _ in range(10)]

    answered = threading.Semaphore(0)

    def attempt(slot):
        body = {"doctor": doctor.doctor_id, "date": slot[0], "time": slot[1]}
        try:
            return server.fetch("POST", "/api/appointments/", body, patient_token, timeout=30)
        finally:
            answered.release()

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(attempt, slot) for slot in slots[:8]]
        for _ in range(3):
            await asyncio.to_thread(answered.acquire, timeout=30)
        await asyncio.to_thread(pg.stop, "immediate")  # a crash, with bookings in flight
        late = [pool.submit(attempt, slot) for slot in slots[8:]]  # these certainly meet it down
        answers = [await asyncio.wrap_future(f) for f in futures + late]
    await asyncio.to_thread(pg.start)

    for answer in answers:
        assert answer.status in (201, 503), (answer.status, answer.text[:300])
        assert answer.content_type.startswith("application/json"), answer.text[:300]
    assert [a.status for a in answers[-2:]] == [503, 503]
    created = sorted(a.json()["id"] for a in answers if a.status == 201)
    assert len(created) >= 3  # the three answered before the crash
    with pg.connect() as conn:
        stored = conn.execute(
            "SELECT id FROM appointments_appointment WHERE patient_id = %s ORDER BY id", (patient.id,)
        ).fetchall()
        day = conn.execute(  # that doctor's whole day, other tests' bookings included
            "SELECT queue_number FROM appointments_appointment WHERE doctor_id = %s AND date = %s ORDER BY 1",
            (doctor.doctor_id, date),
        ).fetchall()
    assert [row[0] for row in stored] == created  # every 201 is stored, nothing else is
    assert [row[0] for row in day] == list(range(1, len(day) + 1))  # queue numbers: no gap, no repeat
    events = stored_events(pg, patient.id)
    for appointment_id in created:  # each stored booking has its events, written with it
        assert any(kind == "appointment_updated" and data["id"] == appointment_id for _, kind, data in events)

    # After the restart: everything works, and the socket has every stored event exactly once.
    slot = next_slot()
    sentinel = await asyncio.to_thread(
        retried_while_unavailable,
        lambda: server.fetch(
            "POST", "/api/appointments/", {"doctor": doctor.doctor_id, "date": slot[0], "time": slot[1]}, patient_token
        ),
    )
    assert sentinel.status == 201, sentinel.text
    await client.wait_for_appointment(sentinel.json()["id"], within=30)
    assert_got_the_stored_stream(client, pg, patient)
    await client.stop()


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _store_big_stream(pg, user_id: int, *, events: int, size: int) -> None:
    """Give a user a long stream of large events, straight into the store (bookings would take minutes)."""
    padding = "x" * size
    with pg.connect() as conn, conn.transaction():
        head = conn.execute(
            "INSERT INTO notifications_eventsequence (user_id, last_seq) VALUES (%s, %s) "
            "ON CONFLICT (user_id) DO UPDATE SET last_seq = notifications_eventsequence.last_seq + %s "
            "RETURNING last_seq",
            (user_id, events, events),
        ).fetchone()[0]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO notifications_event (user_id, seq, type, data, created_at) "
                "VALUES (%s, %s, 'all_notifications_read', %s, now())",
                [(user_id, seq, json.dumps({"padding": padding})) for seq in range(head - events + 1, head + 1)],
            )


def _open_and_never_read(server, token: str) -> socket.socket:
    """A raw TCP client: sends the WebSocket handshake, reads the 101 answer, and never reads again."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow phone: a small window
    raw.connect(("127.0.0.1", server.port))
    raw.sendall(
        (
            f"GET /ws/?token={token}&last_event_id=0 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    raw.settimeout(15)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(1)  # byte by byte: nothing past the handshake is taken from the socket
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return raw


async def test_clients_that_never_read_cost_other_sockets_nothing(fault_server, pg, users):
    server = await asyncio.to_thread(fault_server)
    stalled, reading, other, doctor = (
        [users.patient() for _ in range(3)],
        users.patient(),
        users.patient(),
        users.doctors[2],
    )
    # Each stalled user: 450 events of 24 KB (what a 2,000-emoji reason cost escaped as ASCII), 10.8 MB
    # a replay; nine sockets each that never read: 27 replays, 290 MB that would wait unsent.
    for account in stalled:
        await asyncio.to_thread(_store_big_stream, pg, account.id, events=450, size=24_000)
    # A user who reads: 450 events of 8 KB (a 2,000-character reason as UTF-8).
    await asyncio.to_thread(_store_big_stream, pg, reading.id, events=450, size=8_000)
    stalled_tokens = [await login(server, account) for account in stalled]
    reading_token, other_token = await login(server, reading), await login(server, other)
    other_client = await Client(server, other_token).start()
    baseline = _rss_bytes(server.process.pid)
    never_read = [
        await asyncio.to_thread(_open_and_never_read, server, token) for token in stalled_tokens for _ in range(9)
    ]
    try:
        # A socket that reads, resuming from the start meanwhile, gets its whole stream.
        reader = await Client(server, reading_token, after=0).start()
        await reader.wait_for(lambda c: c.last_id == stored_events(pg, reading.id)[-1][0], within=60)
        # Events still flow to everyone else, and the server answers at once.
        booked = await book(server, other_token, doctor)
        assert booked.status == 201, booked.text
        await other_client.wait_for_appointment(booked.json()["id"])
        health = await asyncio.to_thread(server.fetch, "GET", "/healthz", timeout=1)
        assert health.status == 200, health.text
        # Bounded: about a replay page and the backlog limit per socket (under 4 MB), not whole replays.
        grown = _rss_bytes(server.process.pid) - baseline
        assert grown < 100 * 2**20, f"the server holds {grown / 2**20:.0f} MB more for sockets that never read"
    finally:
        for raw in never_read:
            raw.close()
    assert_got_the_stored_stream(other_client, pg, other)
    assert_got_the_stored_stream(reader, pg, reading)
    await reader.stop()
    await other_client.stop()
