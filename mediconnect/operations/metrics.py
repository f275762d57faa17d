"""`GET /metrics`: this process's counters in the Prometheus text format, and the request middleware.

The series are defined in core.metrics (every layer counts into them). Every daphne process keeps
its own in prometheus-client's default registry; scrape each process (each node) on its own port.
Labels are bounded sets only: a request's method, its route pattern
(`api/appointments/(?P<pk>[^/.]+)/$`, never the path with its ids) and its status; the socket series
have none. Nothing about a user (id, email, a reason) is ever a label.

Who may read it: a client on the loopback (127.0.0.1 or ::1, as `client_address` sees it, so behind
a trusted proxy the forwarded address counts, not the proxy's), or anyone with
`Authorization: Bearer <METRICS_TOKEN>` when that setting is not empty. A request forwarded by a
proxy that is not in TRUSTED_PROXIES is not a loopback client, even though its connection comes
from one: nginx on the same machine would otherwise open the metrics to the internet.
"""

import hmac
import ipaddress
import time

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, generate_latest

from accounts.throttling import client_address
from core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from core.middleware import SyncAndAsyncMiddleware

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # no route: a 404, or a middleware that answered first (a redirect)

# --- requests ---------------------------------------------------------------------------------


def _route(request) -> str:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) if match is not None else None
    return route or UNMATCHED  # a pattern of the project's URLconf: a bounded set


def _observe(request, response, started: float) -> None:
    method = request.method if request.method in _METHODS else "other"
    labels = (method, _route(request), str(response.status_code))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)


class RequestMetricsMiddleware(SyncAndAsyncMiddleware):
    """Count and time every request Django answers. Sync and async capable: no thread hop under ASGI."""

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        started = time.perf_counter()
        response = self.get_response(request)
        _observe(request, response, started)
        return response

    async def __acall__(self, request):
        started = time.perf_counter()
        response = await self.get_response(request)
        _observe(request, response, started)
        return response


# --- the endpoint -----------------------------------------------------------------------------


def _ip(value: str):
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _is_loopback(address: str) -> bool:
    ip = _ip(address)
    if ip is None:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _from_trusted_proxy(request) -> bool:
    remote = _ip(request.META.get("REMOTE_ADDR") or "")
    if remote is None:
        return False
    return any(remote in ipaddress.ip_network(proxy, strict=False) for proxy in settings.TRUSTED_PROXIES)


def _loopback_client(request) -> bool:
    if not _is_loopback(client_address(request)):
        return False
    forwarded = "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META
    return not forwarded or _from_trusted_proxy(request)


def _has_token(request) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected:
        return False
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@require_safe
async def metrics_view(request):
    # The classic text format (0.0.4), which every Prometheus version and most scrapers read.
    if not (_loopback_client(request) or _has_token(request)):
        return HttpResponseForbidden("Metrics are served to loopback clients or with the metrics token.\n")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_PLAIN_0_0_4)
