from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # The OpenAPI extension, the receiver of Django's sign-outs (which closes the user's sockets), and
        # the API's tokens, revoked when the services say a user's credentials are (accounts.signals).
        from . import receivers, schema, tokens  # noqa: F401
