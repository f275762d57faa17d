"""ASGI entry point: HTTP through Django, WebSockets through the /ws/ consumer."""

import os

from mediconnect.server.http_handler import get_http_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings")

# Django must be set up before anything imports models. Django's ASGI handler, one thread hop a
# request (mediconnect/server/http_handler.py).
django_http = get_http_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from mediconnect.operations.outage import WebsocketOutageGuard  # noqa: E402
from mediconnect.realtime.board_socket import with_boards  # noqa: E402
from mediconnect.realtime.consumers import EventConsumer  # noqa: E402
from mediconnect.realtime.ws_auth import JWTAuthMiddleware  # noqa: E402
from mediconnect.server.daphne_tuning import (  # noqa: E402
    bounded_backlog,
    fail_with_close_frames,
    lazy_debug_text,
    spread_pings,
    write_through,
)
from mediconnect.server.graceful import graceful_shutdown  # noqa: E402
from mediconnect.server.static_files import StaticFilesHandler  # noqa: E402

fail_with_close_frames()
write_through()
bounded_backlog()
spread_pings()
lazy_debug_text()
graceful_shutdown()  # SIGTERM: stop accepting, close every socket with 1012, exit

application = ProtocolTypeRouter(
    {
        # Static files are few and small: daphne serves them itself, before Django's middleware
        # (collected, with hashed names, when deployed; nginx serves them in a cluster).
        "http": StaticFilesHandler(django_http),
        # An outage closes a socket with 4503 "service unavailable, reconnect later" (mediconnect/operations/outage.py).
        "websocket": WebsocketOutageGuard(
            JWTAuthMiddleware(URLRouter([path("ws/", with_boards(EventConsumer.as_asgi()))]))
        ),
    }
)
