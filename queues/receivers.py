from django.db.models.signals import post_save
from django.dispatch import receiver

from appointments.models import Appointment

from .services import queue_broadcast_for


@receiver(post_save, sender=Appointment, dispatch_uid="queue_follows_appointments")
def appointment_saved(sender, instance: Appointment, **kwargs) -> None:
    # A booking, cancellation or reschedule changes how many are waiting in that day's queue.
    queue_broadcast_for(instance)
