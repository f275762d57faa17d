"""The base of the project's middleware: sync and async capable. A subclass writes `__call__` for a
sync chain and `__acall__` for an async one. The project's HTTP handler builds the chain in sync mode
and runs it in one thread hop a request (mediconnect/server/http_handler.py); the async path serves a chain
built by Django's own ASGIHandler, without a hop around this middleware."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class SyncAndAsyncMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
