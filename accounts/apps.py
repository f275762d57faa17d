from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # The OpenAPI extension, and the receiver of Django's sign-outs (which closes the user's sockets).
        from . import receivers, schema  # noqa: F401
