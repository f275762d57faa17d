from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"

    def ready(self):
        from . import receivers  # noqa: F401
