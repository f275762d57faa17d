"""Helpers for socket tests: connect as a user, read frames with a timeout (each checked against its
schema, tests/support/frames.py), act through services."""

import datetime

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from mediconnect.asgi import application
from tests.support.frames import check_frame

TIMEOUT = 5


def token_for(user, *, lifetime: datetime.timedelta | None = None) -> str:
    token = AccessToken.for_user(user)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


async def open_socket(user=None, *, token=None, query="", headers=()):
    token = token or token_for(user)
    path = f"/ws/?token={token}" + (f"&{query}" if query else "")
    communicator = WebsocketCommunicator(application, path, headers=[(b"host", b"127.0.0.1"), *headers])
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected, "socket refused"
    return communicator


async def frame(communicator) -> dict:
    """The next frame, checked against its schema (core/wire.py)."""
    return check_frame(await communicator.receive_json_from(timeout=TIMEOUT))


async def ready(communicator) -> dict:
    first = await frame(communicator)
    assert first["type"] == "ready", first
    return first["data"]


async def frames_until(communicator, predicate) -> list[dict]:
    """Every frame up to and including the first one that matches `predicate`."""
    seen = []
    while True:
        item = await frame(communicator)
        seen.append(item)
        if predicate(item):
            return seen


def tomorrow() -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=1)


@database_sync_to_async
def book(*, actor, doctor, patient=None, date=None, time="09:00", reason=""):
    from appointments.services import appointment_book

    hour, minute = map(int, time.split(":"))
    return appointment_book(
        actor=actor,
        doctor=doctor,
        patient=patient,
        date=date or timezone.localdate(),
        time=datetime.time(hour, minute),
        reason=reason,
    )


@database_sync_to_async
def transition(*, actor, appointment, to_status):
    from appointments.services import appointment_transition

    return appointment_transition(actor=actor, appointment=appointment, to_status=to_status)


@database_sync_to_async
def mark_all_read(user):
    from notifications.services import notifications_mark_all_read

    return notifications_mark_all_read(user=user)
