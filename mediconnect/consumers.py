"""The one socket at /ws/: a user's event stream, and the doctor queues they watch.

The user comes from `scope["user"]` (ws_auth); nothing the client says changes
whose stream it hears. Stored events arrive as ready-made frames with their
per-user `seq`; the consumer only checks order and forwards them.
"""

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.models import Doctor
from core.errors import DomainError, InvalidInput, NotAllowed, NotFound
from notifications import stream
from queues.selectors import can_run_queue, may_watch_queue
from queues.services import UNSET, queue_day, queue_snapshot, queue_update

from . import presence

logger = logging.getLogger(__name__)

CLOSE_TOO_BIG = 1009
CLOSE_TOKEN_EXPIRED = 4401
RATE_PER_SECOND = 10  # client frames, sustained
RATE_BURST = 30


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
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{name} must be a whole number, 0 or more.")
    return value


@database_sync_to_async
def _open_stream(user, after: int | None):
    """The newest seq now, and the events after `after` to replay (oldest first)."""
    newest = stream.last_seq(user.pk)
    replay = []
    if after is not None and newest is not None and newest > after:
        replay = [(e.seq, stream.event_frame(e)) for e in stream.events_after(user.pk, after, upto=newest)]
    return newest, replay


@database_sync_to_async
def _missing_frames(user_id: int, after: int, before: int):
    return [(e.seq, stream.event_frame(e)) for e in stream.events_after(user_id, after, upto=before - 1)]


@database_sync_to_async
def _join(user, doctor_id: int) -> dict:
    doctor = Doctor.objects.filter(pk=doctor_id).first()
    if doctor is None:
        raise NotFound("No such doctor.")
    if not may_watch_queue(user, doctor):
        raise NotAllowed("You can follow a doctor's queue while you have an active appointment with them.")
    return queue_snapshot(queue_day(doctor=doctor))


@database_sync_to_async
def _update(user, doctor_id: int, current_queue: int, estimated_wait) -> None:
    doctor = Doctor.objects.filter(pk=doctor_id).first()
    if doctor is None:
        raise NotFound("No such doctor.")
    if not can_run_queue(user, doctor):
        raise NotAllowed("Only this doctor or staff may run this queue.")
    queue_update(actor=user, doctor=doctor, current_queue=current_queue, estimated_wait=estimated_wait)


class EventConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.user = self.scope["user"]
        self.last_sent = 0
        self.queues: set[int] = set()
        self.limiter = RateLimiter(RATE_PER_SECOND, RATE_BURST)
        self.tasks: list[asyncio.Task] = []

        resume_error = None
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        after = None
        if query.get("last_event_id"):
            try:
                after = int(query["last_event_id"][0])
                if after < 0:
                    raise ValueError
            except ValueError:
                resume_error = "last_event_id must be a whole number; replay skipped."

        # Join the stream before reading it: an event committed from here on is either
        # in the replay below or arrives live afterwards (and duplicates are dropped).
        await self.channel_layer.group_add(stream.user_group(self.user.pk), self.channel_name)
        await self.accept()
        newest, replay = await _open_stream(self.user, after)
        await self.send(
            stream.frame(
                "ready",
                {
                    "user_id": self.user.pk,
                    "role": self.user.role,
                    "last_event_id": newest,
                },
            )
        )
        if resume_error:
            await self._error("bad_request", resume_error)
        for _seq, text in replay:
            await self.send(text)
        self.last_sent = newest or 0

        await presence.backend().add(self.user.pk, self.channel_name)
        self.tasks.append(asyncio.create_task(self._heartbeat()))
        expires = self.scope.get("token_expires")
        if expires:
            self.tasks.append(asyncio.create_task(self._close_at(expires)))

    async def disconnect(self, code):
        for task in getattr(self, "tasks", []):
            task.cancel()
        user = self.scope.get("user")
        if user is None or not hasattr(self, "queues"):
            return
        await self.channel_layer.group_discard(stream.user_group(user.pk), self.channel_name)
        for doctor_id in self.queues:
            await self.channel_layer.group_discard(stream.queue_group(doctor_id), self.channel_name)
        try:
            await presence.backend().remove(user.pk, self.channel_name)
        except Exception:  # presence expires on its own
            logger.warning("presence removal failed", exc_info=True)

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(presence.HEARTBEAT_SECONDS)
            try:
                await presence.backend().refresh(self.user.pk, self.channel_name)
            except Exception:
                logger.warning("presence refresh failed", exc_info=True)

    async def _close_at(self, expires: float):
        await asyncio.sleep(max(0.0, expires - time.time()))
        await self.close(code=CLOSE_TOKEN_EXPIRED)

    async def _error(self, code: str, message: str, request: str | None = None):
        data = {"code": code, "message": message}
        if request:
            data["request"] = request
        await self.send(stream.frame("error", data))

    # Client → server

    async def receive(self, text_data=None, bytes_data=None):
        raw = text_data if text_data is not None else bytes_data
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_MESSAGE_BYTES:
            # Reached only on a server that does not enforce the limit itself; daphne's autobahn
            # refuses 1009 from an application, so there the socket closes plainly instead.
            try:
                await self.close(code=CLOSE_TOO_BIG)
            except Exception:
                logger.warning("server refused close code 1009; start daphne with --websocket-max-message-size")
                await self.close()
            return
        if not self.limiter.allow():
            await self._error("rate_limited", "Too many frames; slow down.")
            return
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            await self._error("bad_request", 'Frames are JSON objects: {"type": ..., "data": {...}}.')
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._error("bad_request", 'Frames are JSON objects with a string "type".')
            return
        kind = message["type"]
        data = message.get("data", {})
        handler = self.HANDLERS.get(kind)
        if handler is None:
            await self._error("bad_request", f"Unknown type {kind[:40]!r}.", kind[:40])
            return
        if not isinstance(data, dict):
            await self._error("bad_request", '"data" must be an object.', kind)
            return
        try:
            await handler(self, data)
        except DomainError as exc:
            await self._error(exc.code, exc.message, kind)

    async def join_queue(self, data: dict):
        doctor_id = _int_field(data, "doctor_id")
        snapshot = await _join(self.user, doctor_id)
        await self.channel_layer.group_add(stream.queue_group(doctor_id), self.channel_name)
        self.queues.add(doctor_id)
        await self.send(stream.frame("queue_updated", snapshot))

    async def leave_queue(self, data: dict):
        doctor_id = _int_field(data, "doctor_id")
        await self._leave(doctor_id)

    async def update_queue(self, data: dict):
        doctor_id = _int_field(data, "doctor_id")
        current = _int_field(data, "current_queue")
        wait = _int_field(data, "estimated_wait", required=False, allow_null=True)
        await _update(self.user, doctor_id, current, wait)

    HANDLERS = {"join_queue": join_queue, "leave_queue": leave_queue, "update_queue": update_queue}

    async def _leave(self, doctor_id: int):
        await self.channel_layer.group_discard(stream.queue_group(doctor_id), self.channel_name)
        self.queues.discard(doctor_id)

    # Channel layer → server (named after the message types in notifications.stream)

    async def event_push(self, message):
        seq = message["seq"]
        if seq <= self.last_sent:
            return  # already sent by the replay, or by another path
        if seq > self.last_sent + 1:
            # A push overtook an earlier one (or one was lost): the rows fill the gap, in order.
            for missing_seq, text in await _missing_frames(self.user.pk, self.last_sent, seq):
                await self.send(text)
                self.last_sent = missing_seq
        await self.send(message["frame"])
        self.last_sent = seq

    async def queue_push(self, message):
        await self.send(message["frame"])

    async def queue_revoke(self, message):
        doctor_id = message["doctor_id"]
        if doctor_id in self.queues:
            await self._leave(doctor_id)
