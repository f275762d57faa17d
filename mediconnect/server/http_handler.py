"""Django's ASGI handler for HTTP, with two per-request costs taken out; what a request does is unchanged.

Django runs each request in a `ThreadSensitiveContext`: all of its sync code (middleware, view,
the `request_started`/`request_finished` signals that lend and take back the pooled database
connection) runs on one thread of the request's own, apart from every other request. Two things
came with that, and were a fifth of a booking's server CPU (py-spy):

- **A thread per request.** asgiref starts a new thread for each context and joins it at the end.
  Here the context gets a single-worker executor from a pool instead (asgiref's
  `ThreadSensitiveContext(executor=...)`): still one request at a time on one thread, so a sync
  view never shares its thread, and so its database connection, with another request; but the
  threads are kept, as a WSGI server keeps its threads. The pool grows to the number of requests
  served at once and keeps at most IDLE_THREADS of them idle.
- **A hop to that thread around every middleware.** In async mode Django's own middleware
  (`MiddlewareMixin`: sessions, CSRF, locale, auth, messages …) runs `process_request` and
  `process_response` each through `sync_to_async`, the view through one more, and the
  `request_started` and `request_finished` signals through one each: some twenty hops per request.
  Here the middleware chain is built in sync mode, the WSGI way, and a request goes through
  `request_started`, all of the chain, its view and (for a response whose content is in memory, as
  every API answer is) `request_finished` in one hop. An async view (`/healthz`, `/metrics`) runs in
  that thread through `async_to_sync`, back on the event loop.

What Django's `handle` does besides is kept, but for one thing: it races the view against the
client's disconnect and cancels the view's task when the client leaves first. A sync view runs on
to its end either way (a thread cannot be cancelled), and the project's async views answer at once;
here the answer to a client that left is dropped by daphne.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.urls import set_script_prefix

IDLE_THREADS = 16


class _ThreadPool:
    """Single-worker executors, lent one per request; the newest returned is lent first."""

    def __init__(self, keep: int):
        self.keep = keep
        self.idle: list[ThreadPoolExecutor] = []
        self.lock = threading.Lock()

    def take(self) -> ThreadPoolExecutor:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="http")

    def give(self, executor: ThreadPoolExecutor) -> None:
        with self.lock:
            if len(self.idle) < self.keep:
                self.idle.append(executor)
                return
        executor.shutdown(wait=False)  # its thread ends once it has finished what it runs


class OneHopASGIHandler(ASGIHandler):
    def __init__(self):
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.threads = _ThreadPool(IDLE_THREADS)

    async def __call__(self, scope, receive, send):
        executor = self.threads.take()
        try:
            # Django's own context inside finds this one and uses it (only the outermost counts).
            # Every task of the request ends before `handle` returns; a sync call that a client's
            # disconnect left running keeps the executor busy, and the next request queues behind it.
            async with ThreadSensitiveContext(executor=executor):
                await super().__call__(scope, receive, send)
        finally:
            self.threads.give(executor)

    async def handle(self, scope, receive, send):
        # Django's handle, re-implemented (patches.TARGETS fingerprints it: a Django that changes it
        # fails the tests and does not start, until this is read against it).
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:  # its content is read while it is sent: closed after
                    await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def _respond(self, scope, body_file):
        """The request's sync part, on its thread: from `request_started` to the response."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__  # as Django's run_get_response (patches.TARGETS)
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            # Its content is in memory, so `request_finished` (which hands the database connection
            # back to the pool) need not wait until the client has taken it.
            response.close()
        return response

    async def get_response_async(self, request):
        # Not on this handler's path (handle calls get_response in the request's thread); kept
        # for callers of Django's API.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_http_application() -> OneHopASGIHandler:
    """What `django.core.asgi.get_asgi_application` does, with this handler."""
    import django

    django.setup(set_prefix=False)
    return OneHopASGIHandler()
