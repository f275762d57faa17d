"""ASGI entry point: HTTP through Django, WebSockets through the /ws/ consumer (`python -m mediconnect.server`)."""

import os
import sys
from pathlib import Path

from mediconnect.server.http_handler import get_http_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings")

# The `daphne` script (or `python -m daphne`) would serve this application without our server: no 1012
# on restart, no bound on a socket's backlog, no direct frames. Refuse, rather than run without them.
_program = Path((getattr(sys, "argv", None) or [""])[0])
if "daphne" in {_program.name, _program.parent.name}:
    raise SystemExit("Serve MediConnect with `python -m mediconnect.server` (daphne's flags), not the daphne script")

# Django must be set up before anything imports models. Django's ASGI handler, one thread hop a
# request (mediconnect/server/http_handler.py).
django_http = get_http_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from mediconnect.operations.outage import WebsocketOutageGuard  # noqa: E402
from mediconnect.realtime.board_socket import with_boards  # noqa: E402
from mediconnect.realtime.consumers import EventConsumer  # noqa: E402
from mediconnect.realtime.ws_auth import JWTAuthMiddleware  # noqa: E402
from mediconnect.server.static_files import StaticFilesHandler  # noqa: E402

# What the server adds under this application (the 1012 restart, the socket tuning, direct frames) is
# the server's: `python -m mediconnect.server` (mediconnect/server/daphne_server.py).

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
