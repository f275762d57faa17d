"""The one socket at /ws/: a user's event stream, and the doctor queues they watch.

The user is the access token's (ws_auth checks it); nothing the client says changes
whose stream it hears. Stored events arrive as ready-made frames with their
per-user `seq`; the consumer only checks order and forwards them.

Bounded per client: a user's sockets are counted across processes (the oldest beyond
WS_MAX_SOCKETS_PER_USER closes with 4429); a resume is replayed a page at a time, or answered
with `resync` when it would be too long or reach past what the store keeps. It cannot leak: an
error in a frame's handler becomes an `error` frame, and the socket's groups, presence, count,
timer and task are released on every way out (a close, a failed connect, an error, a cancel).
"""

import asyncio
import json
import logging
import re
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model

from accounts.selectors import doctor_by_id
from core import outbox, wire, wirejson
from core.errors import Conflict, DomainError, InvalidInput, NotAllowed
from core.groups import queue_group, user_group
from core.metrics import REPLAYED_EVENTS, RESYNCS, WS_CONNECTIONS
from mediconnect.realtime.failures import log_failure
from mediconnect.realtime.hub import hub
from mediconnect.realtime.hub_socket import HubSocket
from notifications import replay
from queues.selectors import may_watch_queue, queue_state
from queues.services import UNSET, queue_snapshot, queue_update
from visits.selectors import CallAccess, call_participant, check_call_open

logger = logging.getLogger(__name__)

LARGEST_ID = wirejson.MAX_INT  # the contract's bound on whole numbers in requests and frames
RESYNC = "resync"  # instead of a replay
RATE_PER_SECOND = 10  # client frames, sustained
RATE_BURST = 30
SIGNAL_MAX_BYTES = 16 * 1024  # a call_signal's `signal`, as compact JSON
# A sender's right to signal in a call, read once and kept this long per socket (ICE candidates come
# in bursts: one query per burst, not per candidate); the window itself is checked on every signal.
CALL_ACCESS_SECONDS = 10.0
CALL_ACCESS_KEPT = 4  # calls remembered per socket, the oldest dropped first


class RateLimiter:
    """A token bucket: `burst` frames at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _int_field(data: dict, name: str, *, required: bool = True, allow_null: bool = False):
    value = data.get(name, UNSET)
    if value is UNSET:
        if required:
            raise InvalidInput(f"{name} is required.")
        return UNSET
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= wirejson.MAX_INT:
        raise InvalidInput(f"{name} must be a whole number from 0 to {wirejson.MAX_INT}.")
    return value


def _resume_point(query: dict) -> int | None:
    """`last_event_id` from the query: None when absent; ValueError unless a whole number from 0 to LARGEST_ID."""
    values = query.get("last_event_id")
    if not values:
        return None
    if not re.fullmatch(r"[0-9]{1,10}", values[0]) or int(values[0]) > LARGEST_ID:
        raise ValueError(values[0])
    return int(values[0])


@database_sync_to_async
def _open_stream(user_id: int, after: int | None):
    """The active user with their stream's newest seq (one query), and what to send for a resume from `after`:
    the first page of the replay, or RESYNC."""
    users = get_user_model().objects.select_related("doctor_profile").filter(pk=user_id, is_active=True)
    user = replay.with_stream_head(users).order_by().first()
    if user is None:
        return None, None, []
    newest = user.stream_head
    if after is None or newest is None or newest <= after:
        return user, newest, []
    if newest - after > settings.WS_REPLAY_MAX:
        return user, newest, RESYNC
    page = replay.replay_page(user_id, after, newest)
    if not replay.replayable(page, after):
        return user, newest, RESYNC
    return user, newest, [(e.seq, replay.event_frame(e)) for e in page]


@database_sync_to_async
def _replay_page(user_id: int, after: int, upto: int):
    return [(e.seq, replay.event_frame(e)) for e in replay.replay_page(user_id, after, upto)]


@database_sync_to_async
def _join(user, doctor_id: int) -> dict:
    doctor = doctor_by_id(doctor_id)
    if not may_watch_queue(user, doctor):
        raise NotAllowed("You can follow a doctor's queue while you have an active appointment with them.")
    return queue_snapshot(queue_state(doctor_id=doctor.pk))


@database_sync_to_async
def _call_participant(user, appointment_id: int) -> CallAccess:
    return call_participant(user, appointment_id)


def _signal_size(signal: dict) -> int:
    return len(json.dumps(signal, separators=(",", ":"), ensure_ascii=False).encode())


@database_sync_to_async
def _update(user, doctor_id: int, current_queue: int, estimated_wait) -> None:
    queue_update(actor=user, doctor=doctor_by_id(doctor_id), current_queue=current_queue, estimated_wait=estimated_wait)


class EventConsumer(HubSocket):
    """One user's socket. It has no layer channel of its own: the process's hub hands it its groups' messages."""

    user_id = None
    socket_name: str | None = None
    expiry: asyncio.TimerHandle | None = None
    catching_up: asyncio.Task | None = None
    closing: asyncio.Task | None = None  # the close when the token runs out
    present = False
    counted = False  # in the process's open-socket gauge

    frame_bytes = 0  # the size of the client frame being handled
    greeted = False  # `ready` was sent

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.queues: set[int] = set()
        self.calls: dict[int, tuple[float, CallAccess]] = {}  # appointment id → (when read, access)

    async def _open(self):
        self.user_id = int(self.scope["user_id"])  # the token carries it as text
        self.hub = hub()
        self.last_sent = 0
        # Pushes that arrive before the stream is read (or while a gap is filled) wait here, in order.
        self.pending: list[dict] | None = []
        self.limiter = RateLimiter(RATE_PER_SECOND, RATE_BURST)

        resume_error = None
        try:
            after = _resume_point(parse_qs(self.scope.get("query_string", b"").decode("latin-1")))
        except ValueError:
            after = None
            resume_error = f"last_event_id must be a whole number from 0 to {LARGEST_ID}; nothing was replayed."

        # Join the stream before reading it: an event committed from here on is either
        # in the replay below or arrives live afterwards (and duplicates are dropped).
        await self.hub.join(user_group(self.user_id), self)
        self.user, newest, first = await _open_stream(self.user_id, after)
        if self.user is None:  # deleted or deactivated since the token was issued
            logger.info("websocket refused: no active user for the token")
            self._release()
            await self.close()  # before accept: daphne answers the handshake with 403
            return
        self.socket_name = self.hub.register_socket(self.user_id)
        await self.accept()
        if not self.released:
            self.counted = True
            WS_CONNECTIONS.inc()
        await self.send(wire.ready_frame(user_id=self.user.pk, role=self.user.role, last_event_id=newest))
        self.greeted = True
        if resume_error:
            await self._error(wire.BAD_REQUEST, resume_error)
        if first == RESYNC:
            RESYNCS.inc()
            await self.send(wire.resync_frame(newest))
        else:
            await self._replay(first, newest)
        self.last_sent = newest or 0
        await self._catch_up()
        if self.released:  # closed meanwhile (its user's sockets closed, or it was the oldest of too many)
            return

        expires = self.scope.get("token_expires")
        if expires:
            loop = asyncio.get_running_loop()
            delay = max(0.0, expires - time.time())
            self.expiry = loop.call_later(delay, self._expire)
        self.present = True
        await self.hub.arrive(self.user_id)

    async def _replay(self, page: list, newest: int | None) -> None:
        """Send the replay a page at a time, reading each next page once the one before is sent."""
        while page:
            REPLAYED_EVENTS.inc(len(page))
            for _seq, text in page:
                await self.send(text)
            last = page[-1][0]
            if last >= newest or len(page) < replay.REPLAY_PAGE:
                return
            page = await _replay_page(self.user_id, last, newest)

    def _expire(self):
        self.expiry = None
        self.closing = asyncio.ensure_future(self._close_now(wire.CLOSE_SIGNED_OUT))

    async def _close_now(self, code: int):
        """Close the socket from the server's side; it hears nothing more from here on."""
        self._release()
        await self.close(code=code)

    def _release(self):
        """Let go of everything the socket holds; safe to call more than once, and from any point of connect."""
        if self.released or self.hub is None:
            return
        self.released = True
        if self.expiry is not None:
            self.expiry.cancel()
        if self.catching_up is not None and self.catching_up is not asyncio.current_task():
            self.catching_up.cancel()
        self.hub.leave(user_group(self.user_id), self)
        for doctor_id in self.queues:
            self.hub.leave(queue_group(doctor_id), self)
        self.queues = set()
        if self.present:
            self.present = False
            self.hub.depart(self.user_id)
        if self.socket_name is not None:
            self.hub.unregister_socket(self.socket_name)
        if self.counted:
            self.counted = False
            WS_CONNECTIONS.dec()

    async def _error(self, code: str, message: str, request: str | None = None):
        await self.send(wire.error_frame(code, message, request))

    # Client → server

    async def websocket_receive(self, message):
        try:
            await super().websocket_receive(message)
        except Exception as exc:  # a bug, or a service down: say so, keep the socket
            log_failure(logger, "websocket frame handler", exc)
            # The contract's error codes have none for a server fault; bad_request is the one a client
            # already handles (show the message, carry on).
            await self._error(wire.BAD_REQUEST, "The server could not handle this frame; try again later.")

    async def receive(self, text_data=None, bytes_data=None):
        raw = text_data if text_data is not None else bytes_data
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_MESSAGE_BYTES:
            # Reached only on a server that does not enforce the limit itself; daphne's autobahn
            # refuses 1009 from an application, so there the socket closes plainly instead.
            try:
                await self.close(code=wire.CLOSE_TOO_BIG)
            except Exception:
                logger.warning("server refused close code 1009; start daphne with --websocket-max-message-size")
                await self.close()
            return
        if not self.limiter.allow():
            await self._error(wire.RATE_LIMITED, "Too many frames; slow down.")
            return
        self.frame_bytes = size
        try:
            message = wirejson.loads(raw)
        except wirejson.MalformedJSON as exc:
            await self._error(wire.BAD_REQUEST, f'Frames are JSON objects: {{"type": ..., "data": {{...}}}}. {exc}')
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._error(wire.BAD_REQUEST, 'Frames are JSON objects with a string "type".')
            return
        kind = message["type"]
        data = message.get("data", {})
        handler = self.HANDLERS.get(kind)
        if handler is None:
            await self._error(wire.BAD_REQUEST, f"Unknown type {kind[:40]!r}.", kind[:40])
            return
        if not isinstance(data, dict):
            await self._error(wire.BAD_REQUEST, '"data" must be an object.', kind)
            return
        try:
            await handler(self, data)
        except DomainError as exc:
            await self._error(exc.code, exc.message, kind)

    async def join_queue(self, data: dict):
        doctor_id = _int_field(data, "doctor_id")
        snapshot = await _join(self.user, doctor_id)
        if self.released:
            return  # closed while the snapshot was read
        self.queues.add(doctor_id)
        await self.hub.join(queue_group(doctor_id), self)
        await self.send(wire.queue_updated_frame(snapshot))

    async def leave_queue(self, data: dict):
        self._leave(_int_field(data, "doctor_id"))

    async def update_queue(self, data: dict):
        doctor_id = _int_field(data, "doctor_id")
        current = _int_field(data, "current_queue")
        wait = _int_field(data, "estimated_wait", required=False, allow_null=True)
        await _update(self.user, doctor_id, current, wait)

    async def send_call_signal(self, data: dict):
        """Relay a video visit's signal to the other participant's open sockets: live only, never stored.

        Never logged nor echoed in an error: SDP and ICE candidates carry network addresses.
        """
        appointment_id = _int_field(data, "appointment_id")
        signal = data.get("signal")
        if not isinstance(signal, dict):
            raise InvalidInput("signal must be a JSON object.")
        # The frame holds the signal: only a frame over the limit needs the signal measured.
        if self.frame_bytes > SIGNAL_MAX_BYTES and _signal_size(signal) > SIGNAL_MAX_BYTES:
            raise InvalidInput(f"signal must be at most {SIGNAL_MAX_BYTES} bytes of JSON.")
        access = await self._call_access(appointment_id)
        try:
            check_call_open(access)
        except Conflict as exc:
            raise NotAllowed(exc.message) from None
        text = wire.call_signal_frame(appointment_id=appointment_id, from_user_id=self.user_id, signal=signal)
        await outbox.call_relay(access.peer_id, text)

    async def _call_access(self, appointment_id: int) -> CallAccess:
        """Who is at the other end of the call, read at most every CALL_ACCESS_SECONDS per socket."""
        now = time.monotonic()
        kept = self.calls.get(appointment_id)
        if kept is not None and now - kept[0] < CALL_ACCESS_SECONDS:
            return kept[1]
        access = await _call_participant(self.user, appointment_id)  # NotFound, NotAllowed: not kept
        self.calls.pop(appointment_id, None)
        while len(self.calls) >= CALL_ACCESS_KEPT:
            self.calls.pop(next(iter(self.calls)))
        self.calls[appointment_id] = (now, access)
        return access

    HANDLERS = {
        "join_queue": join_queue,
        "leave_queue": leave_queue,
        "update_queue": update_queue,
        "call_signal": send_call_signal,
    }

    def _leave(self, doctor_id: int):
        self.hub.leave(queue_group(doctor_id), self)
        self.queues.discard(doctor_id)

    # Hub → socket (named after the message types in core.groups)

    async def event_push(self, message):
        """A committed transaction's events for this user, `[[seq, frame], ...]` in order."""
        if self.pending is None:
            events = [(seq, text) for seq, text in message["events"] if seq > self.last_sent]
            if not events:
                return  # already sent by the replay, or by another path
            if events[0][0] == self.last_sent + 1 and _consecutive(events):
                for _seq, text in events:
                    await self.send(text)
                self.last_sent = events[-1][0]
                return
            # A push overtook an earlier one (or one was lost): fill the gap from the rows, in order,
            # while later pushes wait in `pending`.
            self.pending = []
            self.catching_up = asyncio.ensure_future(self._catch_up())
        self.pending.append(message)

    async def stream_head(self, message):
        """The layer was away: the stream may have grown meanwhile with nothing pushed. Catch up to `seq`."""
        head = message["seq"]
        if head is None or head <= self.last_sent:
            return
        if self.pending is None:
            self.pending = []
            self.catching_up = asyncio.ensure_future(self._catch_up())
        self.pending.append({"events": [[head, None]]})  # no frame: read everything up to it from the store

    async def _catch_up(self):
        """Send the pushes that waited, reading any missing events from the stream; then go live."""
        while self.pending:
            message = self.pending.pop(0)
            for seq, text in message["events"]:
                if seq <= self.last_sent:
                    continue
                upto = seq if text is None else seq - 1  # what must come from the store first
                if upto - self.last_sent > settings.WS_REPLAY_MAX:
                    # Too many lost to fill (the layer was away a long time): the client reloads instead.
                    RESYNCS.inc()
                    await self.send(wire.resync_frame(upto))
                    self.last_sent = upto
                while upto > self.last_sent:
                    page = await _replay_page(self.user_id, self.last_sent, upto)
                    if not page:
                        break  # pruned meanwhile: nothing more to send before this one
                    REPLAYED_EVENTS.inc(len(page))
                    for missing_seq, missing_text in page:
                        await self.send(missing_text)
                        self.last_sent = missing_seq
                if text is not None:
                    await self.send(text)
                    self.last_sent = seq
        self.pending = None
        self.catching_up = None

    def queue_push(self, message):
        return self.send_shared(message, message["frame"])  # the hub awaits what is not sent yet

    async def sockets_close(self, message):
        await self._close_now(message["code"])

    async def sockets_evict(self, message):
        """The user opened a socket over their limit: the named ones (their oldest) close."""
        if self.socket_name in message["sockets"]:
            await self._close_now(message["code"])

    async def call_relay(self, message):
        """A video visit's signal from the other participant: sent as it came (after `ready`), stored nowhere."""
        if self.greeted and not self.released:
            await self.send(message["frame"])

    async def queue_revoke(self, message):
        if message["doctor_id"] in self.queues:
            self._leave(message["doctor_id"])


def _consecutive(events) -> bool:
    return all(later[0] == earlier[0] + 1 for earlier, later in zip(events, events[1:], strict=False))
