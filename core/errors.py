"""Domain errors raised by services; each face (API, portal, admin, socket) renders them."""


class DomainError(Exception):
    """A refused change. `code` names it for machines, the message is for people."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict:
        if self.field:
            return {self.field: [self.message]}
        return {"detail": self.message}


class InvalidInput(DomainError):
    """The request is malformed or asks for a move that does not exist."""


class NotAllowed(DomainError):
    """The move exists, but the caller's role may not make it."""

    code = "forbidden"
    status = 403


class NotFound(DomainError):
    """The object does not exist, or the caller may not see it."""

    code = "not_found"
    status = 404


class Conflict(DomainError):
    """The change collides with the current state (a slot already held)."""

    code = "conflict"
    status = 409
