"""Events the task worker stores reach open sockets: live through Redis, or from the stream without it."""

from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from mediconnect.realtime import recovery
from notifications.models import NotificationType
from notifications.services import notification_create
from tests.support.wsutil import frames_until, open_socket, ready

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def store_unpushed_reminder(user):
    """As the worker does in a process of its own: stored, with a push that cannot reach this process."""
    with mock.patch("core.outbox._deliver"), transaction.atomic():
        return notification_create(
            user=user, type=NotificationType.APPOINTMENT_REMINDER, title="Appointment Reminder", message="m"
        )


async def test_without_redis_a_socket_gets_what_another_process_stored(settings, patient, monkeypatch):
    settings.REDIS_URL = ""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    monkeypatch.setattr(recovery, "LAYER_PROBE_SECONDS", 0.05)
    communicator = await open_socket(patient)
    try:
        await ready(communicator)
        notification = await store_unpushed_reminder(patient)
        seen = await frames_until(communicator, lambda f: f["type"] == "new_notification")
        assert seen[-1]["data"]["id"] == notification.pk
        assert seen[-1]["data"]["type"] == "APPOINTMENT_REMINDER"
    finally:
        await communicator.disconnect()
