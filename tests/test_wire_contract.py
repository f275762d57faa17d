"""The contract's frame tables against core/wire.py: every server → client type has a builder and a
schema with the contract's keys, the error codes are the contract's, and the schemas catch a frame off them.

The contract lives beside the clone (../shared/contract.md); a clone without it skips the table checks."""

import re
from pathlib import Path

import pytest

from core import wire
from tests.support.frames import check_frame

CONTRACT = Path(__file__).resolve().parents[1].parent / "shared" / "contract.md"

# Keys the contract's later versions add to objects of the table (each sentence is quoted from the
# contract, so that an edit there shows up here). v1.2's `mode` of the appointment is not built yet.
ADDITIONS = [
    (
        'The queue object (REST, `queue_updated`, boards) also carries `"waiting_numbers"`',
        {"queue": {"waiting_numbers"}},
    ),
    (
        '`new_notification`, `notification_read` and `all_notifications_read` also carry `"unread_count"`',
        {t: {"unread_count"} for t in ("new_notification", "notification_read", "all_notifications_read")},
    ),
    ('The appointment object also carries `"mode"`', {"appointment": {"mode"}}),
]


@pytest.fixture(scope="module")
def contract() -> str:
    if not CONTRACT.exists():
        pytest.skip(f"no contract beside the clone ({CONTRACT})")
    return CONTRACT.read_text()


def _keys(braces: str) -> tuple[set[str], set[str]]:
    """({required keys}, {optional keys}) of a contract object written `{"a","b"?}`."""
    found = re.findall(r'"(\w+)"(\??)', braces)
    return {k for k, opt in found if not opt}, {k for k, opt in found if opt}


def _object(contract: str, section: str) -> set[str]:
    """The keys of the `Object: {...}` line of a `## section`."""
    body = contract.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return _keys(re.search(r"Object: `(\{[^`]*\})`", body).group(1))[0]


def _server_table(contract: str) -> dict[str, dict]:
    """The "Server → client" table: type → {"required", "optional", "id", "cell"}."""
    table = contract.split("Server → client:", 1)[1].split("\n\n", 2)[1]
    objects = {
        "the notification object": _object(contract, "Notifications"),
        "the appointment object": _object(contract, "Appointments"),
        "the queue object": _object(contract, "Queues (one queue per doctor per day)"),
    }
    rows = {}
    for line in table.splitlines()[2:]:
        type_cell, data_cell, id_cell = (cell.strip() for cell in line.strip("|").split("|"))
        type_ = type_cell.strip("`")
        if data_cell in objects:
            required, optional = set(objects[data_cell]), set()
        else:
            required, optional = _keys(data_cell.split(";")[0])
        rows[type_] = {"required": required, "optional": optional, "id": id_cell == "yes", "cell": data_cell}
    return rows


def _schema_keys(type_: str) -> tuple[set[str], set[str]]:
    data = wire.FRAMES[type_]["data"]
    data = data.get("oneOf", [data])[0]  # queue_updated: the queue object first, a board's after it
    required = set(data["required"])
    return required, set(data["properties"]) - required


def test_every_server_frame_of_the_contract_has_a_schema_with_its_keys(contract):
    table = _server_table(contract)
    resync = re.search(r'\{"type":"resync","data":(\{[^}]*\})\}', contract).group(1)
    table["resync"] = {"required": _keys(resync)[0], "optional": set(), "id": False, "cell": resync}
    for sentence, added in ADDITIONS:
        assert sentence in contract
        for target, keys in added.items():  # a frame type, or an object of the contract
            for type_, row in table.items():
                if target in (type_, row["cell"].removeprefix("the ").removesuffix(" object")):
                    row["required"] |= keys

    # v1.2 adds per-user frames outside the table: `file_updated`, the file object, with an `id`.
    assert "Events: `file_updated` (the file object, per-user with `id`" in contract
    file_object = re.search(r"File object: `(\{[^`]*\})`", contract).group(1)
    table["file_updated"] = {"required": _keys(file_object)[0], "optional": set(), "id": True, "cell": file_object}

    # v1.2 video visits: `call_signal`, live only, no `id`.
    relayed = re.search(r'`\{"type":"call_signal","data":(\{[^}]*\})\}`: live only, no `id`', contract).group(1)
    table["call_signal"] = {"required": _keys(relayed)[0], "optional": set(), "id": False, "cell": relayed}

    assert set(table) == set(wire.FRAMES)
    for type_, row in table.items():
        assert _schema_keys(type_) == (row["required"], row["optional"]), type_
        assert wire.FRAMES[type_]["id"] is row["id"], type_


def test_a_boards_queue_is_the_queue_object_with_the_doctors_name_and_next_numbers(contract):
    line = re.search(r"`GET /api/boards/\{token\}/` → (.*)", contract).group(1)
    assert 'queue object + "doctor_name" + "next"' in line
    board = wire.FRAMES["queue_updated"]["data"]["oneOf"][1]
    assert set(board["required"]) == _schema_keys("queue_updated")[0] | {"doctor_name", "next"}


def test_the_error_codes_are_the_contracts(contract):
    row = _server_table(contract)["error"]["cell"]
    assert set(re.findall(r"`(\w+)`", row.split("one of", 1)[1])) == set(wire.ERROR_CODES)


def test_the_close_codes_are_the_contracts(contract):
    for code in (wire.CLOSE_SIGNED_OUT, wire.CLOSE_TOO_MANY_SOCKETS, wire.CLOSE_TOO_BIG):
        assert f"code {code}" in contract or f"with {code}" in contract, code


# The builders, and the schemas as the socket tests use them (tests/support/frames.py).

QUEUE = {"doctor_id": 1, "date": "2026-01-01", "current_queue": 0, "estimated_wait": 15, "waiting": 0}
QUEUE["waiting_numbers"] = []
READ = {"notification_id": 2, "unread_count": 1}


@pytest.mark.parametrize(
    ("text", "type_"),
    [
        (wire.ready_frame(user_id=1, role="PATIENT", last_event_id=None), "ready"),
        (wire.ready_frame(user_id=None, role="BOARD", last_event_id=None), "ready"),
        (wire.error_frame(wire.FORBIDDEN, "No."), "error"),
        (wire.error_frame(wire.BAD_REQUEST, "No.", "join_queue"), "error"),
        (wire.resync_frame(7), "resync"),
        (wire.queue_updated_frame(QUEUE), "queue_updated"),
        (wire.queue_updated_frame({**QUEUE, "doctor_name": "Dr. A", "next": []}), "queue_updated"),
        (wire.stored_event_frame("all_notifications_read", {"unread_count": 0}, 3), "all_notifications_read"),
        (
            wire.stored_event_frame("notification_read", {"notification_id": 2, "unread_count": 1}, 4),
            "notification_read",
        ),
    ],
)
def test_each_builder_makes_a_frame_its_schema_accepts(text, type_):
    assert check_frame(text)["type"] == type_


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "ready", "data": {"user_id": 1, "role": "PATIENT"}},  # a key missing
        {"type": "ready", "data": {"user_id": 1, "role": "PATIENT", "last_event_id": None, "extra": 1}},
        {"type": "error", "data": {"code": "conflict", "message": "x"}},  # not a contract code
        {"type": "all_notifications_read", "data": {"unread_count": 0}},  # a stored event without its id
        {"type": "resync", "data": {"last_event_id": 1}, "id": 2},  # an id where there is none
        {"type": "queue_updated", "data": {**QUEUE, "doctor_name": "Dr. A"}},  # half a board's queue
        {"type": "call_me", "data": {}},  # a type nobody declared
    ],
)
def test_a_frame_off_its_schema_fails_the_check(bad):
    with pytest.raises(AssertionError):
        check_frame(bad)
