"""A display board's socket (`/ws/?board=<token>`): read-only, its doctors' queues and nothing else.

ws_auth has checked the board's secret and put the board (id, doctors and their names) in the
scope. The socket joins only its doctors' queue groups and its board's group (for a close when
the token is rotated or the doctors change), through the process's hub: no user stream, no
presence, no per-user socket count. Every client frame gets `error` `forbidden`.

Pushed queue states arrive with the queue object beside the patients' `queue_updated` frame; a
board's frame carries the doctor's name and the next three numbers as well. That frame is made once
per push per process (kept on the hub's message, which every board socket of that doctor here
shares), not once per socket.
"""

import logging

from channels.db import database_sync_to_async

from core import wire
from core.groups import board_group, queue_group
from mediconnect.realtime.consumers import RATE_BURST, RATE_PER_SECOND, RateLimiter
from mediconnect.realtime.hub import hub
from mediconnect.realtime.hub_socket import HubSocket
from queues.models import Board
from queues.services import board_queue, board_queues

logger = logging.getLogger(__name__)

BOARD_FRAME = "board_frame"  # where a push's board frame is kept on the hub's message
BOARD_PREPARED = "board_prepared"  # and where it is kept framed (HubSocket.send_shared)
# Doctor names as the boards of this process last read them (a doctor's name rarely changes;
# every board connect refreshes it).
_doctor_names: dict[int, str] = {}


@database_sync_to_async
def _snapshots(board_id: int) -> list[dict]:
    board = Board.objects.prefetch_related("doctors__user").get(pk=board_id)
    return board_queues(board=board)


def board_frame(message: dict) -> str:
    """The board's `queue_updated` for a pushed queue state: made once per message, then reused."""
    text = message.get(BOARD_FRAME)
    if text is None:
        queue = message["queue"]
        name = _doctor_names.get(queue["doctor_id"], "")
        text = message[BOARD_FRAME] = wire.queue_updated_frame(board_queue(queue, doctor_name=name))
    return text


class BoardConsumer(HubSocket):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.groups_held: list[str] = []

    async def _open(self):
        board = self.scope["board"]
        self.board_id = board["id"]
        _doctor_names.update(board["doctors"])
        self.hub = hub()
        self.limiter = RateLimiter(RATE_PER_SECOND, RATE_BURST)
        self.pending: list[dict] | None = []  # pushes that arrive before the first states are sent
        # Join before reading, so that no change between the read and the join is missed.
        for group in [board_group(self.board_id), *map(queue_group, board["doctors"])]:
            self.groups_held.append(group)
            await self.hub.join(group, self)
        snapshots = await _snapshots(self.board_id)
        if self.released:
            return
        await self.accept()
        await self.send(wire.ready_frame(user_id=None, role="BOARD", last_event_id=None))
        for snapshot in snapshots:
            await self.send(wire.queue_updated_frame(snapshot))
        while self.pending:
            await self.send(board_frame(self.pending.pop(0)))
        self.pending = None

    def _release(self):
        if self.released or self.hub is None:
            return
        self.released = True
        for group in self.groups_held:
            self.hub.leave(group, self)
        self.groups_held = []

    async def receive(self, text_data=None, bytes_data=None):
        if self.limiter.allow():
            await self.send(wire.error_frame(wire.FORBIDDEN, "A display board's socket is read-only."))

    # Hub → socket

    async def queue_push(self, message):
        if self.pending is not None:
            self.pending.append(message)
            return
        pending = self.send_shared(message, board_frame(message), key=BOARD_PREPARED)
        if pending is not None:
            await pending

    async def sockets_close(self, message):
        self._release()
        await self.close(code=message["code"])


def with_boards(user_app):
    """The /ws/ application: a board's socket (ws_auth put `board` in its scope) to BoardConsumer, others on."""
    board_app = BoardConsumer.as_asgi()

    async def app(scope, receive, send):
        if scope.get("board") is not None:
            return await board_app(scope, receive, send)
        return await user_app(scope, receive, send)

    return app
