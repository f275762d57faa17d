"""The base of the project's middleware: sync and async capable, so that under ASGI a request never
hops to a thread for it (Django's MiddlewareMixin runs `process_request`/`process_response` through
`sync_to_async`). A subclass writes `__call__` for WSGI and `__acall__` for ASGI."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class SyncAndAsyncMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
