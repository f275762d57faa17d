"""A database or Redis outage answers 503 "try again shortly", never a 500 page or a traceback.

Four doors, one rule (`is_outage`):

- `OutageMiddleware.process_exception`: a view that hits the outage. /api/ gets the API's JSON
  error body (`{"detail": ...}`), portal pages a short plain page; both with `Retry-After`.
- `server_error` (Django's handler500): the same answers for an outage met outside a view (a
  middleware that loads the session or the user), and Django's plain 500 for anything else.
- `WebsocketOutageGuard` and `HubSocket` (mediconnect.realtime.hub_socket): a socket whose handshake (or
  later work) meets the outage is accepted and closed at once with 4503, "service unavailable,
  reconnect later" (as 4401 and 4429 mirror their HTTP statuses). Why not the alternatives: a
  handshake refused before accept reaches the client as HTTP 403, the answer to a bad token, after
  which a client would drop its token or sign the user out; the standard 1013 "Try Again Later"
  cannot be sent, since autobahn (under daphne) lets an application close only with 1000 or
  3000-4999. The portals' socket.js backs off and reconnects on any close but 4401, so 4503 is
  retried with backoff, and the resume from its last event id delivers what happened meanwhile.
- mediconnect.api.errors uses `is_outage` for errors that DRF's views handle themselves.
"""

import logging
import sys
import threading

import redis.exceptions
from django import db
from django.http import HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.views.defaults import server_error as django_server_error

from core.wire import CLOSE_SERVICE_UNAVAILABLE

try:
    import psycopg
except ImportError:  # SQLite deployments do not install it
    psycopg = None

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
API_DETAIL = "The service is briefly unavailable; try again shortly."

OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    db.OperationalError,  # the server is down or refuses connections; Django wraps psycopg's (and PoolTimeout)
    db.InterfaceError,  # the connection went away under us
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,  # refused or reset sockets that a client library did not wrap
    TimeoutError,
)
if psycopg is not None:
    OUTAGE_ERRORS += (psycopg.OperationalError, psycopg.InterfaceError)  # psycopg_pool.PoolTimeout among them


def is_outage(exc: BaseException | None) -> bool:
    """Whether `exc` (or what it was raised from) says a service the app needs is unreachable."""
    return _caused_by(exc, OUTAGE_ERRORS)


DATABASE_ERRORS: tuple[type[BaseException], ...] = (db.OperationalError, db.InterfaceError)
if psycopg is not None:
    DATABASE_ERRORS += (psycopg.OperationalError, psycopg.InterfaceError)
_pool_check = threading.Lock()


def log_outage(where: str, exc: BaseException) -> None:
    # The class names the service; the message may carry connection details, so it stays out.
    logger.warning("%s: a service is unavailable (%s); told the client to retry", where, exc.__class__.__name__)
    if _caused_by(exc, DATABASE_ERRORS):
        check_database_pool()


def _caused_by(exc: BaseException | None, kinds: tuple[type[BaseException], ...]) -> bool:
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, kinds):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def check_database_pool() -> None:
    """Test the idle pooled connections in the background, once at a time, dropping broken ones.

    A connection that sat idle in the pool while the database went away is broken, but the pool
    learns that only when it lends it: without this, each such connection would fail one request
    after the database is back (as many as the pool holds).
    """
    if not _pool_check.acquire(blocking=False):
        return  # one check at a time is enough

    def run():
        try:
            pool = getattr(db.connections[db.DEFAULT_DB_ALIAS], "pool", None)  # PostgreSQL's pool only
            if pool is not None:
                pool.check()
        except Exception:  # the database may still be away; the next outage answer checks again
            logger.debug("database pool check failed", exc_info=True)
        finally:
            db.connections.close_all()
            _pool_check.release()

    threading.Thread(target=run, name="db-pool-check", daemon=True).start()


def api_unavailable() -> JsonResponse:
    return JsonResponse({"detail": API_DETAIL}, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Try again shortly</title>"
    "<h1>MediConnect is briefly unavailable</h1>"
    "<p>Please try again in a few seconds.</p></html>"
)


def page_unavailable() -> HttpResponse:
    return HttpResponse(PAGE, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def unavailable(request) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_unavailable()
    return page_unavailable()


class OutageMiddleware(MiddlewareMixin):
    """503 for a view that meets an outage (see the module's docstring)."""

    def process_exception(self, request, exception):
        if is_outage(exception):
            log_outage(request.path, exception)
            return unavailable(request)
        return None


def server_error(request, *args, **kwargs):
    """handler500: an outage met outside a view still gets the 503; other errors Django's plain 500."""
    exc = sys.exc_info()[1]
    if is_outage(exc):
        log_outage(request.path, exc)
        return unavailable(request)
    return django_server_error(request, *args, **kwargs)


class WebsocketOutageGuard:
    """ASGI middleware for /ws/: an outage before the socket's consumer runs (the token's user lookup)
    closes the socket with 4503, never a 500 at the handshake.

    The consumers close with 4503 themselves for an outage they meet (mediconnect.realtime.hub_socket), so an
    outage that reaches here comes before anything was sent: this wraps no `send` (a frame's every
    send would pay for it).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        try:
            return await self.app(scope, receive, send)
        except Exception as exc:
            if not is_outage(exc):
                raise
            log_outage("websocket", exc)
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_SERVICE_UNAVAILABLE})
            return None
