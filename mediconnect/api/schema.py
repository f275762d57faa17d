"""The OpenAPI schema, told true: every status an operation can answer, and times as the API writes them.

drf-spectacular documents the success response of each view. The errors follow rules that hold for
every view alike, so they are added here by rule instead of a decorator on each view:

- 401 where a caller is authenticated (a missing, expired or bad token), and on the token routes
  (wrong credentials, a bad refresh token).
- 403 where a caller is authenticated (a role that may not, a session request without its CSRF
  token); not on the token routes, which authenticate nobody.
- 400 on every write (the body, or the move it asks for, can be refused) and on reads with query
  parameters (a bad filter or date).
- 404 where the path names an object, and on paginated lists (a page past the end).
- 409 where a change can collide with another (a slot already held): CONFLICT_ROUTES.
- 429 where attempts are limited: a view with DRF throttles, and THROTTLED_ROUTES (the contract's
  login and registration limits), with `Retry-After`.
- 503 on every operation: a database or Redis outage (mediconnect.operations.outage), with `Retry-After`.

A `TimeField` is declared as the `HH:MM` string the API writes and reads, not `format: time`
(which promises seconds and a time zone).
"""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.permissions import AllowAny

CONFLICT_ROUTES = {
    ("POST", "/api/appointments/"),
    ("PUT", "/api/appointments/{id}/"),
    ("PATCH", "/api/appointments/{id}/"),
}
TOKEN_ROUTES = {("POST", "/api/auth/token/"), ("POST", "/api/auth/token/refresh/")}
THROTTLED_ROUTES = {("POST", "/api/auth/token/"), ("POST", "/api/auth/register/")}
HHMM = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "09:30"}

ERROR = {
    "type": "object",
    "description": "`detail` says why, for people.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
VALIDATION_ERROR = {
    "type": "object",
    "description": 'What was refused: `{"<field>": ["why", ...]}` for fields, or `{"detail": "why"}`.',
    "additionalProperties": True,
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}}

DESCRIPTIONS = {
    "400": "Refused: malformed JSON, invalid fields, or a move that is not allowed from the current state.",
    "401": "No valid credentials: a missing, expired or bad token (or wrong email and password).",
    "403": "Authenticated, but not allowed (the role may not, or a session request lacks its CSRF token).",
    "404": "No such object, or not one the caller may see (or a page past the end).",
    "409": "The change collides with the current state (that slot is already booked).",
    "429": "Too many attempts; wait as long as `Retry-After` says.",
    "503": "A service the API needs (database, Redis) is briefly unavailable; retry after `Retry-After`.",
}


class HHMMTimeField(OpenApiSerializerFieldExtension):
    """Every `TimeField` (and subclass) as the HH:MM string the API writes and reads."""

    target_class = "rest_framework.serializers.TimeField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        return dict(HHMM)


class MediConnectAutoSchema(AutoSchema):
    """drf-spectacular's operation, with the error statuses its view can answer added by rule.

    Works on the finished operation (`get_operation` is what the schema generator calls), so it reads
    only what the operation states and the view's public DRF API, none of drf-spectacular's own steps.
    """

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:  # excluded from the schema
            return None
        responses = operation["responses"]
        for code in self.error_codes(operation.get("parameters", [])):
            if code not in responses:
                responses[code] = self.error_response(code)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_codes(self, parameters: list[dict]) -> list[str]:
        """The error statuses this operation can answer, by the rules in the module's docstring."""
        view, method, path = self.view, self.method.upper(), self.path
        codes = {"503"}
        authenticates = bool(getattr(view, "authentication_classes", None))
        if authenticates:
            codes |= {"401", "403"}
        if (method, path) in TOKEN_ROUTES:
            codes.add("401")
        if method in {"POST", "PUT", "PATCH", "DELETE"}:
            codes.add("400")
        query = {p["name"] for p in parameters if p["in"] == "query"}
        if query:
            codes.add("400")
        if any(p["in"] == "path" for p in parameters) or self.is_paginated(query):
            codes.add("404")
        if (method, path) in CONFLICT_ROUTES:
            codes.add("409")
        if (method, path) in THROTTLED_ROUTES or view.get_throttles():
            codes.add("429")
        if not authenticates and all(isinstance(p, AllowAny) for p in view.get_permissions()):
            codes.discard("403")
        return sorted(codes)

    def is_paginated(self, query: set[str]) -> bool:
        """A paginated list: drf-spectacular gave the operation its view's paginator's query parameters."""
        paginator = getattr(self.view, "paginator", None)  # DRF's GenericAPIView: None if it does not paginate
        if paginator is None:
            return False
        names = {p["name"] for p in paginator.get_schema_operation_parameters(self.view)}
        return bool(names) and names <= query

    def error_response(self, code: str) -> dict:
        name, schema = ("ValidationError", VALIDATION_ERROR) if code == "400" else ("Error", ERROR)
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
        self.registry.register_on_missing(component)
        response = {"description": DESCRIPTIONS[code], "content": {"application/json": {"schema": component.ref}}}
        if code in {"429", "503"}:
            response["headers"] = dict(RETRY_AFTER)
        return response
