"""Hostile and random text frames on one socket of a real server (hypothesis), while another user's
socket on the same server keeps receiving its events.

The fuzzed socket may only answer `error` frames with a contract code, and stays open (no frame here
passes the 64 KiB limit, and no burst passes the rate limit). The bystander gets its stored stream
exactly, and the fuzzed user shows offline once their sockets are closed. Derandomized, so CI
runs the same examples every time.
"""

import json
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from tests.faults import PASSWORD, next_slot, stored_events

pytestmark = [pytest.mark.live]

ERROR_CODES = {"bad_request", "forbidden", "not_found", "rate_limited"}
FRAMES_PER_EXAMPLE = 8  # with the probe, under the rate limit's burst of 30

# Frames that broke servers like this one: deep nesting, non-finite and out-of-range numbers, wrong
# shapes, control characters, long names. All under 64 KiB.
HOSTILE = [
    "[" * 60_000,
    "{" * 30_000,
    '{"type":"join_queue","data":' * 2_000,
    '{"type":"join_queue","data":{"doctor_id":1e400}}',
    '{"type":"join_queue","data":{"doctor_id":NaN}}',
    '{"type":"join_queue","data":{"doctor_id":-Infinity}}',
    '{"type":"update_queue","data":{"doctor_id":1,"current_queue":2147483648}}',
    '{"type":"update_queue","data":{"doctor_id":99999999999999999999999,"current_queue":1}}',
    '{"type":"join_queue","data":{"doctor_id":' + "9" * 4_000 + "}}",
    '{"type":"join_queue","data":[]}',
    '{"type":"join_queue"}',
    '{"type":"ready","data":{}}',
    '{"type":null}',
    '{"type":"' + "x" * 20_000 + '"}',
    "\x00",
    "",
    "null",
    '"join_queue"',
    '{"type":"leave_queue","data":{"doctor_id":true}}',
    '{"type":"join_queue","data":{"doctor_id":1},"type":"update_queue"}',
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
message_types = st.sampled_from(["join_queue", "leave_queue", "update_queue", "ready", "error"]) | st.text(max_size=12)
messages = st.fixed_dictionaries(
    {"type": message_types},
    optional={
        "data": json_values
        | st.fixed_dictionaries(
            {},
            optional={"doctor_id": json_values, "current_queue": json_values, "estimated_wait": json_values},
        )
    },
).map(json.dumps)
assert all(len(text.encode()) < 64 * 1024 for text in HOSTILE)

frames = st.one_of(messages, json_values.map(json.dumps), st.text(max_size=200), st.sampled_from(HOSTILE))


def test_fuzzed_frames_get_only_error_frames_and_cost_other_sockets_nothing(fault_server, pg, users):
    server = fault_server()
    fuzzer, bystander, doctor = users.patient(), users.patient(), users.doctors[0]
    fuzzer_token, bystander_token = server.token(fuzzer.email, PASSWORD), server.token(bystander.email, PASSWORD)

    with connect(f"{server.ws_url}?token={bystander_token}", open_timeout=10, max_size=None) as watching:
        start = json.loads(watching.recv(timeout=10))["data"]["last_event_id"] or 0
        bookings: list[int] = []

        def book_for_bystander(count: int) -> None:
            for _ in range(count):
                date, at = next_slot()
                answer = server.fetch(
                    "POST",
                    "/api/appointments/",
                    {"doctor": doctor.doctor_id, "date": date, "time": at},
                    bystander_token,
                )
                assert answer.status == 201, answer.text
                bookings.append(answer.json()["id"])

        probes = iter(range(10**9))

        @settings(
            max_examples=60,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.lists(frames, min_size=1, max_size=FRAMES_PER_EXAMPLE))
        def a_fuzzed_socket_answers_only_errors_and_stays_open(sent: list[str]):
            with connect(f"{server.ws_url}?token={fuzzer_token}", open_timeout=10, max_size=None) as ws:
                assert json.loads(ws.recv(timeout=10))["type"] == "ready"
                for text in sent:
                    ws.send(text)
                # A frame that must be answered last: everything before it answers the fuzz.
                probe = f"probe-{next(probes)}"
                ws.send(json.dumps({"type": probe, "data": {}}))
                while True:
                    reply = json.loads(ws.recv(timeout=10))  # a closed socket raises ConnectionClosed here
                    assert reply["type"] == "error" and reply["data"]["code"] in ERROR_CODES, reply
                    if reply["data"].get("request") == probe:
                        break

        flowing = threading.Thread(target=book_for_bystander, args=(5,))
        flowing.start()
        try:
            a_fuzzed_socket_answers_only_errors_and_stays_open()
        finally:
            flowing.join()
        book_for_bystander(1)  # a sentinel: when it arrives, every earlier event must have too

        received = []
        while not any(f["type"] == "appointment_updated" and f["data"]["id"] == bookings[-1] for f in received):
            received.append(json.loads(watching.recv(timeout=15)))
    # Every fuzzed socket is closed: the fuzzer no longer shows online (a crashed socket once stayed
    # online until its process restarted). Presence is announced in the background: polled, bounded.
    admin_token = server.token(users.admin.email, PASSWORD)
    deadline = time.monotonic() + 15
    while server.request("GET", f"/api/presence/{fuzzer.id}/", token=admin_token)[1]["online"]:
        assert time.monotonic() < deadline, "the fuzzed user still shows online after all their sockets closed"
        time.sleep(0.2)
    stored = stored_events(pg, bystander.id, after=start)
    assert [(f["id"], f["type"]) for f in received if "id" in f] == [(seq, kind) for seq, kind, _ in stored]
    assert [f["data"]["id"] for f in received if f["type"] == "appointment_updated"] == bookings
