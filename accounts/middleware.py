from django.utils import translation

from core.middleware import SyncAndAsyncMiddleware


class UserLanguageMiddleware(SyncAndAsyncMiddleware):
    """A signed-in user sees the portal in the language stored on their account.

    Sync and async capable, so that under ASGI Django runs it on the event loop instead of hopping
    to a thread around it on every request. Needs AuthenticationMiddleware above it.
    """

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        _activate_language(request, getattr(request, "user", None))
        return self.get_response(request)

    async def __acall__(self, request):
        # The lazy `request.user` would query the database right here in the event loop; auser()
        # loads the user without blocking it.
        if hasattr(request, "auser"):
            user = await request.auser()
            # auser() and request.user cache apart: hand the loaded user to the views below, as
            # login() does, so that they do not load it a second time.
            request.user = user
            _activate_language(request, user)
        return await self.get_response(request)


def _activate_language(request, user) -> None:
    if user is not None and user.is_authenticated and user.language:
        translation.activate(user.language)
        request.LANGUAGE_CODE = user.language
