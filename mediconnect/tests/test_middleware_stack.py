"""Every middleware runs in async mode under ASGI, so no request hops to a thread around one."""

import logging

import pytest
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.utils.module_loading import import_string


class SyncOnlyMiddleware:
    """What this test exists to catch."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


def adapted_middleware(caplog) -> list[str]:
    """The middleware Django wraps in a sync/async adapter when it builds the ASGI handler's chain."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        ASGIHandler()
    return [r.getMessage() for r in caplog.records if "adapted" in r.getMessage()]


@pytest.mark.parametrize("path", settings.MIDDLEWARE)
def test_every_configured_middleware_is_async_capable(path):
    assert getattr(import_string(path), "async_capable", False) is True


def test_the_asgi_handler_adapts_no_middleware(settings, caplog):
    settings.DEBUG = True  # Django logs each adaptation in debug mode only
    assert adapted_middleware(caplog) == []

    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.SyncOnlyMiddleware"]
    assert any("SyncOnlyMiddleware" in message for message in adapted_middleware(caplog))
