from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # The OpenAPI extension; the receivers of Django's sign-in failures (counted by throttling)
        # and sign-outs (which close the user's sockets).
        from . import receivers, schema, throttling  # noqa: F401
