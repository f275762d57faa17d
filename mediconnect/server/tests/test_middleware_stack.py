"""An HTTP request hops to a thread once for its middleware and view, on a thread that is kept.

Django's ASGI handler in async mode runs each `MiddlewareMixin` middleware's `process_request` and
`process_response` through `sync_to_async`, and starts a thread for every request; the project's
handler (mediconnect/server/http_handler.py) runs the whole chain in sync mode in one hop instead.
"""

import logging
import threading

import pytest
from asgiref.sync import markcoroutinefunction
from django.http import StreamingHttpResponse
from django.urls import path

from mediconnect.server.http_handler import OneHopASGIHandler
from tests.support.asgiutil import asgi_get

seen: list[tuple[str, int]] = []


class RecordingMiddleware:
    """Notes the thread it runs on (sync only: the chain runs in sync mode)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        seen.append(("middleware", threading.get_ident()))
        return self.get_response(request)


class AsyncOnlyMiddleware:
    """What the adaptation test exists to catch: in a sync chain, it would cost a hop each way."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        return await self.get_response(request)


def adapted_middleware(caplog) -> list[str]:
    """The middleware Django wraps in a sync/async adapter when it builds the handler's chain."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        OneHopASGIHandler()
    return [r.getMessage() for r in caplog.records if "adapted" in r.getMessage()]


def test_the_http_handler_adapts_no_middleware(settings, caplog):
    settings.DEBUG = True  # Django logs each adaptation in debug mode only
    assert adapted_middleware(caplog) == []

    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.AsyncOnlyMiddleware"]
    assert any("AsyncOnlyMiddleware" in message for message in adapted_middleware(caplog))


@pytest.mark.django_db(transaction=True)
async def test_a_request_runs_on_one_thread_and_the_next_request_reuses_it(settings):
    from django.core.signals import request_finished, request_started

    settings.MIDDLEWARE = [f"{__name__}.RecordingMiddleware", *settings.MIDDLEWARE]
    app = OneHopASGIHandler()

    def started(**kwargs):
        seen.append(("started", threading.get_ident()))

    def finished(**kwargs):
        seen.append(("finished", threading.get_ident()))

    request_started.connect(started)
    request_finished.connect(finished)
    seen.clear()
    try:
        for _ in range(2):
            status, headers, _body = await asgi_get("/signup/", app=app)
            assert status == 200
            assert headers[b"Cache-Control"] == b"no-store"  # the project's middleware ran
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)

    assert [what for what, _ in seen] == ["started", "middleware", "finished"] * 2
    threads = {thread for _, thread in seen}
    # The signals lend and take back the request's database connection: they share its thread,
    # which is not the event loop's, and the second request got the first one's thread back.
    assert len(threads) == 1
    assert threads != {threading.get_ident()}


def streaming_view(request):
    async def parts():
        seen.append(("streamed", threading.get_ident()))
        yield b"one "
        yield b"two"

    return StreamingHttpResponse(parts())


urlpatterns = [path("stream/", streaming_view)]


@pytest.mark.django_db(transaction=True)
async def test_a_streamed_response_is_closed_after_it_is_sent(settings):
    from django.core.signals import request_finished

    settings.ROOT_URLCONF = __name__
    app = OneHopASGIHandler()

    def finished(**kwargs):
        seen.append(("finished", threading.get_ident()))

    request_finished.connect(finished)
    seen.clear()
    try:
        status, _headers, body = await asgi_get("/stream/", app=app)
    finally:
        request_finished.disconnect(finished)

    assert (status, body) == (200, b"one two")
    assert [what for what, _ in seen] == ["streamed", "finished"]
