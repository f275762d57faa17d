"""OpenAPI: document our JWT authentication as the bearer scheme simplejwt's is."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class LanguageJWTScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.LanguageJWTAuthentication"
