"""Responses that carry tokens or patient data are never stored by a browser or proxy cache."""

from django.utils.cache import patch_cache_control

from core.middleware import SyncAndAsyncMiddleware


class NoStoreMiddleware(SyncAndAsyncMiddleware):
    """`Cache-Control: no-store` on every response of a view: the API (tokens, appointments,
    notifications), the portals and the account pages, so that nothing of a patient's is left in
    a shared computer's cache or behind the Back button after logout.

    A view that sets its own Cache-Control gets `no-store` added, unless it marks the response with
    `cacheable()` (the same for every user: the web app manifest, the service worker's script).
    Static files do not pass through here (ASGIStaticFilesHandler serves them before Django's
    middleware) and stay cacheable.
    Sync and async capable, so that it costs no thread hop under ASGI.
    """

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return _no_store(self.get_response(request))

    async def __acall__(self, request):
        return _no_store(await self.get_response(request))


def cacheable(response):
    """Let `response` keep the Cache-Control its view set: it carries nothing of any user's."""
    response.cacheable = True
    return response


def _no_store(response):
    if getattr(response, "cacheable", False):
        return response
    existing = response.get("Cache-Control")
    if existing is None:
        response["Cache-Control"] = "no-store"
    elif "no-store" not in existing:
        patch_cache_control(response, no_store=True, private=True)
    return response
