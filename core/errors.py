"""Domain errors raised by services; each face (API, portal, admin, socket) renders them.

They know no wire: the API maps them to statuses and bodies (mediconnect.api.errors), the socket to
`error` frames with their `code`, the admin and the portals to messages.
"""


class DomainError(Exception):
    """A refused change. `code` names it for machines, the message is for people."""

    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """The request is malformed or asks for a move that does not exist."""


class NotAllowed(DomainError):
    """The move exists, but the caller's role may not make it."""

    code = "forbidden"


class NotFound(DomainError):
    """The object does not exist, or the caller may not see it."""

    code = "not_found"


class Conflict(DomainError):
    """The change collides with the current state (a slot already held)."""

    code = "conflict"


class TooSoon(DomainError):
    """The same request came again before it may (a video call rung twice within its pause)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None):
        super().__init__(message, field=field)
        self.retry_after = retry_after
