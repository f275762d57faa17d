"""The socket's wire, declared once: every server → client frame, its schema, the close and error codes.

Each frame type has one builder here and one JSON Schema (`FRAMES`); the consumers, the hub, the
boards and the event stream build frames only through these, and the consumer tests validate every
frame they receive against the schemas (tests/support/wsutil.py), so a key added, renamed or lost
anywhere shows up there. The contract's tables are checked against this module
(core/tests/test_wire.py). It sits on the lowest floor so that every package can import it.

The pages hand `CLOSE_CODES` and `ERROR_CODES` to the scripts through their config, so static/js
spells no code of its own.
"""

import json

# Close codes of /ws/.
CLOSE_TOO_BIG = 1009  # a client frame over WS_MAX_MESSAGE_BYTES
CLOSE_SERVICE_RESTART = 1012  # a graceful restart: reconnect at once, to another server
CLOSE_SIGNED_OUT = 4401  # token expired, refused, or the user signed out; a board's token was rotated
CLOSE_BOARD_CHANGED = 4409  # a board's doctors changed: reconnect for the new set
CLOSE_TOO_MANY_SOCKETS = 4429  # the user's oldest socket, when they open one over WS_MAX_SOCKETS_PER_USER
CLOSE_SERVICE_UNAVAILABLE = 4503  # the database or Redis is down: reconnect later

CLOSE_CODES = {
    "too_big": CLOSE_TOO_BIG,
    "service_restart": CLOSE_SERVICE_RESTART,
    "signed_out": CLOSE_SIGNED_OUT,
    "board_changed": CLOSE_BOARD_CHANGED,
    "too_many_sockets": CLOSE_TOO_MANY_SOCKETS,
    "service_unavailable": CLOSE_SERVICE_UNAVAILABLE,
}

# `code` of an `error` frame.
BAD_REQUEST = "bad_request"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
RATE_LIMITED = "rate_limited"
ERROR_CODES = (BAD_REQUEST, FORBIDDEN, NOT_FOUND, RATE_LIMITED)

# Frame types.
READY = "ready"
ERROR = "error"
RESYNC = "resync"
QUEUE_UPDATED = "queue_updated"
NEW_NOTIFICATION = "new_notification"
NOTIFICATION_READ = "notification_read"
ALL_NOTIFICATIONS_READ = "all_notifications_read"
APPOINTMENT_UPDATED = "appointment_updated"
FILE_UPDATED = "file_updated"  # v1.2: clinical documents
CALL_SIGNAL = "call_signal"  # v1.2: video visits' signalling, relayed live between the two participants
# The per-user types: stored in the user's event stream, sent with their `id`.
STORED_TYPES = (NEW_NOTIFICATION, NOTIFICATION_READ, ALL_NOTIFICATIONS_READ, APPOINTMENT_UPDATED, FILE_UPDATED)


def frame(type_: str, data: dict, *, id_: int | None = None) -> str:
    """One server → client frame as sent on the socket: UTF-8 text, not `\\u` escapes."""
    body = {"type": type_, "data": data}
    if id_ is not None:
        body["id"] = id_
    text = json.dumps(body, separators=(",", ":"), default=str, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate cannot go out as UTF-8: escape it instead
        text = json.dumps(body, separators=(",", ":"), default=str)
    return text


# Builders: one per frame type.


def ready_frame(*, user_id: int | None, role: str, last_event_id: int | None) -> str:
    return frame(READY, {"user_id": user_id, "role": role, "last_event_id": last_event_id})


def error_frame(code: str, message: str, request: str | None = None) -> str:
    data = {"code": code, "message": message}
    if request:
        data["request"] = request
    return frame(ERROR, data)


def resync_frame(last_event_id: int | None) -> str:
    """Tells a client to reload its state over REST and continue from `last_event_id`."""
    return frame(RESYNC, {"last_event_id": last_event_id})


def queue_updated_frame(queue: dict) -> str:
    """A queue object (queues.services.queue_snapshot), or a board's (queues.services.board_queue)."""
    return frame(QUEUE_UPDATED, queue)


def call_signal_frame(*, appointment_id: int, from_user_id: int, signal: dict) -> str:
    """A video visit's signal (SDP, ICE candidate, hang-up) relayed to the other participant: no `id`."""
    return frame(CALL_SIGNAL, {"appointment_id": appointment_id, "from_user_id": from_user_id, "signal": signal})


def stored_event_frame(type_: str, data: dict, seq: int) -> str:
    """A per-user event as its row holds it (`new_notification`, ... `appointment_updated`), with its `id`."""
    return frame(type_, data, id_=seq)


# Schemas (JSON Schema, draft 2020-12): the objects first, then each frame's `data`.

_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_ID_OR_NULL = {"type": ["integer", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}


def _object(required: dict, optional: dict | None = None) -> dict:
    """An object with exactly these keys (the optional ones may be left out), nothing else."""
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


NOTIFICATION = {
    "id": _INT,
    "type": _STR,
    "title": _STR,
    "message": _STR,
    "related_id": _ID_OR_NULL,
    "related_type": _STR,
    "is_read": _BOOL,
    "created_at": _STR,
}
APPOINTMENT = {
    "id": _INT,
    "patient": _INT,
    "patient_name": _STR,
    "doctor": _INT,
    "doctor_name": _STR,
    "date": _STR,
    "time": _STR,
    "status": {"enum": ["PENDING", "CONFIRMED", "COMPLETED", "CANCELLED", "NO_SHOW"]},
    "queue_number": _ID_OR_NULL,
    "mode": {"enum": ["IN_PERSON", "VIDEO"]},
    "reason": _STR,
    "created_at": _STR,
    "updated_at": _STR,
}
QUEUE = {
    "doctor_id": _INT,
    "date": _STR,
    "current_queue": _INT,
    "estimated_wait": _INT,
    "waiting": _INT,
    "waiting_numbers": {"type": "array", "items": _INT},
}
FILE = {
    "id": _INT,
    "patient": _INT,
    "patient_name": _STR,
    "appointment": _ID_OR_NULL,
    "kind": {"enum": ["PRESCRIPTION", "LAB_REPORT", "IMAGING", "OTHER"]},
    "title": _STR,
    "content_type": _STR,
    "size": _INT,
    "status": {"enum": ["SCANNING", "AVAILABLE", "REJECTED"]},
    "uploaded_by": _ID_OR_NULL,
    "uploaded_by_name": _STR_OR_NULL,
    "created_at": _STR,
}
BOARD_QUEUE = {**QUEUE, "doctor_name": _STR, "next": {"type": "array", "items": _INT}}
_UNREAD = {"unread_count": _INT}

# Each frame type → the schema of its `data`, and whether the frame carries an `id`.
FRAMES: dict[str, dict] = {
    READY: {
        "data": _object({"user_id": _ID_OR_NULL, "role": _STR, "last_event_id": _ID_OR_NULL}),
        "id": False,
    },
    ERROR: {
        "data": _object({"code": {"enum": list(ERROR_CODES)}, "message": _STR}, {"request": _STR_OR_NULL}),
        "id": False,
    },
    RESYNC: {"data": _object({"last_event_id": _ID_OR_NULL}), "id": False},
    QUEUE_UPDATED: {"data": {"oneOf": [_object(QUEUE), _object(BOARD_QUEUE)]}, "id": False},
    NEW_NOTIFICATION: {"data": _object({**NOTIFICATION, **_UNREAD}), "id": True},
    NOTIFICATION_READ: {"data": _object({"notification_id": _INT, **_UNREAD}), "id": True},
    ALL_NOTIFICATIONS_READ: {"data": _object(_UNREAD), "id": True},
    APPOINTMENT_UPDATED: {"data": _object(APPOINTMENT), "id": True},
    FILE_UPDATED: {"data": _object(FILE), "id": True},
    CALL_SIGNAL: {
        "data": _object({"appointment_id": _INT, "from_user_id": _INT, "signal": {"type": "object"}}),
        "id": False,
    },
}


def frame_schema(type_: str) -> dict:
    """The JSON Schema of a whole frame of `type_` (KeyError for a type the server never sends)."""
    spec = FRAMES[type_]
    properties = {"type": {"const": type_}, "data": spec["data"]}
    if spec["id"]:
        properties["id"] = {"type": "integer", "minimum": 1}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
