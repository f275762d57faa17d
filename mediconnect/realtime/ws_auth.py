"""ASGI middleware for /ws/: check the Origin, then the JWT access token (signature, expiry, type).

A refused socket is closed before accept, which daphne answers with HTTP 403.
The token may come as `?token=` or `Authorization: Bearer`; it is never logged.
A display board's socket (`?board=<token>`) carries no user token: its board's secret is checked
instead, and the scope gets `board` (its id and doctors) in place of `user_id`.
"""

import logging
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.tokens import AccessToken

from queues.selectors import board_by_token, board_doctors

logger = logging.getLogger(__name__)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def site_scheme(scope) -> str:
    """`https` or `http`: how the page that opens this socket was served, as Django's is_secure() tells.

    The proxy's header (SECURE_PROXY_SSL_HEADER) wins when it is set and the request carries it,
    as for HTTP requests; else the socket's own scheme (wss is https).
    """
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        # Django's META name (HTTP_X_FORWARDED_PROTO) is the header x-forwarded-proto.
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        value = _header(scope, header)
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme", "ws") in ("wss", "https") else "http"


class _OriginValidator(OriginValidator):
    """Channels' Origin check (scheme, host and port against each allowed origin), except that a
    socket without an Origin (a mobile app: only browsers send one) passes, and one that does not
    parse (`http://[x`, which Channels' parse raises on) is refused."""

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if origin is not None:
            try:
                urlparse(origin)
            except ValueError:
                logger.info("websocket refused: origin not allowed")
                return await WebsocketDenier()(scope, receive, send)
        return await super().__call__(scope, receive, send)

    def valid_origin(self, parsed_origin):
        try:
            allowed = parsed_origin is None or super().valid_origin(parsed_origin)
        except ValueError:  # a port that is no number
            allowed = False
        if not allowed:
            logger.info("websocket refused: origin not allowed")
        return allowed


def allowed_origins(scope) -> list[str]:
    """ALLOWED_ORIGINS, then the site's own origin: its Host with the scheme its pages are served over
    (an http page must not talk to the https site's sockets, nor back)."""
    host = _header(scope, b"host")
    return [*settings.ALLOWED_ORIGINS, *([f"{site_scheme(scope)}://{host}"] if host else [])]


def token_from(scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    authorization = _header(scope, b"authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class _AccessToken(AccessToken):
    # simplejwt finds its token backend with import_string for every token it reads (a tenth of a
    # socket connect's CPU in a connect storm, by py-spy); the process has one, so look it up once.
    _token_backend = token_backend


def token_claims(scope) -> tuple[int, float] | None:
    """The user id and expiry (epoch seconds) of a valid access token, or None; no database read.

    The consumer reads the user itself (active, with their doctor profile), in the same query as
    the head of their event stream, once it has joined that stream.
    """
    raw = token_from(scope)
    if not raw:
        return None
    try:
        token = _AccessToken(raw)  # checks signature, expiry and that it is an access token
    except TokenError:
        return None
    return token.get(settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id")), token["exp"]


@database_sync_to_async
def board_scope(token: str) -> dict | None:
    """What a board's socket needs from its board: its id and its doctors' ids and names; None if unknown."""
    board = board_by_token(token)
    if board is None:
        return None
    return {"id": board.pk, "doctors": {doctor.pk: doctor.name for doctor in board_doctors(board)}}


def board_token_from(scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("board")
    return values[0] if values else None


class JWTAuthMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        # The site's own origin comes from the socket's Host and scheme, so a validator per socket.
        return await _OriginValidator(self._authenticate, allowed_origins(scope))(scope, receive, send)

    async def _authenticate(self, scope, receive, send):
        board_token = board_token_from(scope)
        if board_token is not None:
            board = await board_scope(board_token)
            if board is None:
                logger.info("websocket refused: no such board")
                return await WebsocketDenier()(scope, receive, send)
            return await self.app(dict(scope, board=board), receive, send)
        claims = token_claims(scope)
        if claims is None:
            logger.info("websocket refused: no valid access token")
            return await WebsocketDenier()(scope, receive, send)
        user_id, expires = claims
        return await self.app(dict(scope, user_id=user_id, token_expires=expires), receive, send)
