"""`GET /healthz`: a real database query and a real round trip through the channel layer."""

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)
LAYER_TIMEOUT_SECONDS = 3


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _check_channel_layer() -> None:
    layer = get_channel_layer()
    # The default "specific." prefix matters on the core layer: this process receives all its
    # "specific." channels through one blocking read (held by the hub while sockets are open); a
    # channel with another prefix lives in another Redis list that nobody reads while it waits.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "healthz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("the channel layer returned another message")


async def healthz(request):
    checks = {
        "database": sync_to_async(_check_database, thread_sensitive=True)(),
        "channel_layer": _check_channel_layer(),
    }
    body, healthy = {}, True
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, timeout=LAYER_TIMEOUT_SECONDS)
            body[name] = "ok"
        except Exception as exc:  # any failure marks that part down
            logger.warning("healthz: %s is down: %s", name, exc.__class__.__name__)
            body[name] = "error"
            healthy = False
    return JsonResponse(body, status=200 if healthy else 503)
