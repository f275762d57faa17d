"""Each stored event goes to its user's sockets after commit (connected in NotificationsConfig.ready)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from core import outbox

from .models import Event
from .replay import event_frame


@receiver(post_save, sender=Event, dispatch_uid="stream_push_event")
def push_event(sender, instance: Event, created: bool, **kwargs) -> None:
    if created:
        outbox.event_stored(instance.user_id, instance.seq, event_frame(instance))
