"""The queues' answers to what the appointments domain below announces (appointments.signals)."""

import functools

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from appointments.signals import queue_days_changed

from .services import queue_alerts_send


@receiver(queue_days_changed, dispatch_uid="queues.alerts_after_appointment_change")
def alerts_after_appointment_change(sender, *, doctor_id: int, days, **kwargs) -> None:
    """A change to today's appointments may put another one first in line (the one before it cancelled,
    missed, rescheduled; it confirmed): its patient hears "You're next".

    Decided after the change commits, in a transaction of its own that takes the queue row's lock
    first, as queue_update and queue_call_next do: taken inside the change, after its appointment's
    lock and its users' event rows, that lock would make a cycle with a doctor calling next meanwhile.
    """
    today = timezone.localdate()
    if today in days:
        transaction.on_commit(functools.partial(_alerts, doctor_id, today), robust=True)


def _alerts(doctor_id: int, date) -> None:
    with transaction.atomic():
        queue_alerts_send(doctor_id=doctor_id, date=date)
