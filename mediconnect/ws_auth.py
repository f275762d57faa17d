"""ASGI middleware for /ws/: check the Origin, then authenticate the JWT access token.

A refused socket is closed before accept, which daphne answers with HTTP 403.
The token may come as `?token=` or `Authorization: Bearer`; it is never logged.
"""

import logging
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

logger = logging.getLogger(__name__)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def origin_allowed(scope) -> bool:
    """No Origin (mobile apps) is fine; a browser's must be this site or one of ALLOWED_ORIGINS."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if origin in settings.ALLOWED_ORIGINS or "*" in settings.ALLOWED_ORIGINS:
        return True
    host = _header(scope, b"host")
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def token_from(scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    authorization = _header(scope, b"authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


@database_sync_to_async
def _active_user(user_id):
    user = get_user_model().objects.select_related("doctor_profile").filter(pk=user_id, is_active=True).first()
    return user


async def authenticate(scope):
    """The user and the token's expiry (epoch seconds), or (None, None)."""
    raw = token_from(scope)
    if not raw:
        return None, None
    try:
        token = AccessToken(raw)  # checks signature, expiry and that it is an access token
    except TokenError:
        return None, None
    user = await _active_user(token.get(settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id")))
    return user, (token["exp"] if user else None)


class JWTAuthMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        if not origin_allowed(scope):
            logger.info("websocket refused: origin not allowed")
            return await WebsocketDenier()(scope, receive, send)
        user, expires = await authenticate(scope)
        if user is None:
            logger.info("websocket refused: no valid access token")
            return await WebsocketDenier()(scope, receive, send)
        return await self.app(dict(scope, user=user, token_expires=expires), receive, send)
