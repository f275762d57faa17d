"""What `GET /api/appointments/{id}/call/` answers."""

import datetime

from core.payloads import wire_datetime

from .selectors import CallAccess
from .turn import ice_servers


def call_payload(access: CallAccess, *, user_id: int, now: datetime.datetime | None = None) -> dict:
    servers, expires_at = ice_servers(user_id=user_id, now=now)
    return {
        "ice_servers": servers,
        "expires_at": wire_datetime(expires_at),
        "peer": {"user_id": access.peer_id, "name": access.peer_name, "role": access.peer_role},
    }
