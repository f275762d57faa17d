from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"

    def ready(self):
        from . import receivers  # noqa: F401  (the queue's alerts after an appointment's change)
