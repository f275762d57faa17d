from django.utils import translation
from rest_framework_simplejwt.authentication import JWTAuthentication


class LanguageJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication, then the user's language for the rest of the request.

    Session users get theirs from UserLanguageMiddleware; a JWT is only read inside DRF.
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and result[0].language:
            translation.activate(result[0].language)
            request.LANGUAGE_CODE = result[0].language
        return result
