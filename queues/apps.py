from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"

    def ready(self):
        from notifications import stream

        from .selectors import queue_state
        from .services import queue_snapshot

        # What a queue's watchers get after a change touches it (the services call stream.queue_changed).
        stream.read_queues_with(lambda doctor_id: queue_snapshot(queue_state(doctor_id=doctor_id)))
