"""Addresses at the channel layer: the group names, and the types of the messages sent to them.

Nobody else spells a group name. Every message names its group (core.outbox adds it), because each
server process receives all its groups on one channel (mediconnect.realtime.hub); the sockets'
handlers carry the message types' names (`event.push` → `event_push`), as Channels does.
"""

EVENT_PUSH = "event.push"  # a committed transaction's events for a user: `events` [[seq, frame], ...]
QUEUE_PUSH = "queue.push"  # a queue's state: `frame`, and the `queue` object it carries
QUEUE_CHANGED = "queue.changed"  # a queue changed, state not read: each process's hub reads it (`doctor_id`)
QUEUE_REVOKE = "queue.revoke"  # a user's sockets leave a doctor's queue (`doctor_id`)
SOCKETS_CLOSE = "sockets.close"  # every socket of the group closes with `code`
SOCKETS_EVICT = "sockets.evict"  # the named `sockets` of a user close with `code`
CALL_RELAY = "call.relay"  # a video visit's signal for a user's sockets, live only: `frame` (never stored)
STREAM_HEAD = "stream.head"  # a user's newest seq, for sockets that may have missed pushes (`seq`)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def queue_group(doctor_id: int) -> str:
    return f"queue.{doctor_id}"


def board_group(board_id: int) -> str:
    return f"board.{board_id}"


def group_target(group: str) -> tuple[str, int]:
    """`("user", id)`, `("queue", doctor_id)` or `("board", id)`: whose group it is."""
    kind, _, target = group.partition(".")
    return kind, int(target)
