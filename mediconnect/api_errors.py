"""Turn domain errors into the API's status codes and field-keyed bodies; an outage into a JSON 503."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError

from .outage import API_DETAIL, RETRY_AFTER_SECONDS, is_outage, log_outage


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
    if is_outage(exc):
        request = context.get("request")
        log_outage(getattr(request, "path", "api"), exc)
        return Response({"detail": API_DETAIL}, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return drf_exception_handler(exc, context)
