"""Turn domain errors into the API's status codes and field-keyed bodies; an outage into a JSON 503."""

from django.http import JsonResponse
from django.utils.translation import gettext
from django.views.defaults import page_not_found
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import Conflict, DomainError, NotAllowed, NotFound, TooSoon
from mediconnect.operations.outage import API_DETAIL, RETRY_AFTER_SECONDS, is_outage, log_outage

STATUS = {NotAllowed: 403, NotFound: 404, Conflict: 409, TooSoon: 429}  # any other DomainError is a 400


def error_body(exc: DomainError) -> dict:
    """A field's error under its name, as DRF's validation errors are; others under `detail`."""
    return {exc.field: [exc.message]} if exc.field else {"detail": exc.message}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooSoon) else None
        return Response(error_body(exc), status=status, headers=headers)
    if is_outage(exc):
        request = context.get("request")
        log_outage(getattr(request, "path", "api"), exc)
        return Response({"detail": API_DETAIL}, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return drf_exception_handler(exc, context)


def not_found(request, exception):
    """handler404: a path under /api/ that no route takes (an id that is not a number, say) answers
    in JSON as the API's own 404s do; any other path gets Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": gettext("Not found.")}, status=404)
    return page_not_found(request, exception)
