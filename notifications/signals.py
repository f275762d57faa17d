"""Each stored event goes to its user's sockets after commit, and revoked credentials end the user's
Web Push subscriptions (connected in NotificationsConfig.ready)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.signals import credentials_revoked
from core import outbox

from .models import Event
from .replay import event_frame
from .services import push_subscriptions_delete_all


@receiver(post_save, sender=Event, dispatch_uid="stream_push_event")
def push_event(sender, instance: Event, created: bool, **kwargs) -> None:
    if created:
        outbox.event_stored(instance.user_id, instance.seq, event_frame(instance))


@receiver(credentials_revoked, dispatch_uid="notifications_drop_push_subscriptions")
def drop_push_subscriptions(sender, user, **kwargs) -> None:
    """Deactivation or a new password: the user's browsers get no more pushes (in the sender's transaction)."""
    push_subscriptions_delete_all(user=user)
