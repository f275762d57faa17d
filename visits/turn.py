"""ICE servers for a video visit: STUN as configured, TURN with coturn's shared-secret credentials.

coturn's REST scheme (`use-auth-secret`, `static-auth-secret` = TURN_SECRET): the username is
"<unix expiry>:<user id>" and the credential base64(HMAC-SHA1(secret, username)); coturn checks
both and refuses the username once its expiry has passed. The secret itself never leaves here.
"""

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone


def turn_credential(*, secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_servers(*, user_id: int, now: datetime | None = None) -> tuple[list[dict], datetime]:
    """The `ice_servers` of `GET /api/appointments/{id}/call/` for `user_id`, and when they expire."""
    now = now or timezone.now()
    expires_at = now + timedelta(seconds=settings.TURN_TTL_SECONDS)
    servers = []
    if settings.STUN_URLS:
        servers.append({"urls": list(settings.STUN_URLS)})
    if settings.TURN_URLS and settings.TURN_SECRET:
        username = f"{int(expires_at.timestamp())}:{user_id}"
        servers.append(
            {
                "urls": list(settings.TURN_URLS),
                "username": username,
                "credential": turn_credential(secret=settings.TURN_SECRET, username=username),
            }
        )
    return servers, expires_at
