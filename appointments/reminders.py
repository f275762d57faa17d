"""Appointment reminders (contract v1.1): planned with the appointment, sent by the task worker.

One `Reminder` row per appointment and offset of REMINDER_OFFSETS, planned when the appointment is
booked, re-planned when it moves, dropped when it stops being active, each in the transaction of
that change. The worker sweeps at least every SWEEP: each run of `send_due_reminders` first queues
the next one, at the next planned reminder's due time or SWEEP from now, whichever comes first
(`run_worker` queues the first). So a booking queues a wake-up of its own only for a reminder due
sooner than SWEEP: every other is met by a run at its exact time, queued by the sweep before it.
The worker (`send_due_reminders`) claims due rows with a lease (core.leases) and
sends each in a transaction that locks the appointment, checks the claim is still its own and
stores the notification with the row marked SENT: at most once per appointment and offset.
A reminder whose appointment has started by then is skipped, not sent late.
"""

import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django_tasks import task

from core.leases import claim_due
from notifications.models import NotificationType
from notifications.services import notifications_create

from .models import Appointment, Reminder, Wakeup
from .texts import notification_about

State = Reminder.State
SWEEP = datetime.timedelta(minutes=10)


def appointment_start(appointment: Appointment) -> datetime.datetime:
    """When the appointment starts: its date and time in the clinic's time zone (TIME_ZONE)."""
    naive = datetime.datetime.combine(appointment.date, appointment.time)
    return timezone.make_aware(naive, timezone.get_default_timezone())


def wake(at: datetime.datetime) -> None:
    """Queue a run of the reminder worker at `at`, in the caller's transaction (it exists iff the rows do).

    With a Wakeup row of ours, so that sweep_schedule sees the run queued without reading the task backend's rows.
    """
    send_due_reminders.using(run_after=at).enqueue()
    Wakeup.objects.create(task=send_due_reminders.module_path, at=at)


@transaction.atomic
def sweep_schedule(*, now: datetime.datetime) -> None:
    """Queue the worker's next run: at the next planned reminder's time or SWEEP from `now`, whichever
    is first, unless a run is queued by then already (it will queue the one after).

    A run calls this as it starts: the wake-ups due by `now` are this run's and any others due with it,
    which start now too and queue nothing past the one this queues. Two sweeps at once may both queue
    one; the earlier of those runs then finds the later one queued and queues none, so the chains merge.
    """
    wakeups = Wakeup.objects.filter(task=send_due_reminders.module_path)
    wakeups.filter(at__lte=now).delete()
    upcoming = Reminder.objects.filter(state=State.PLANNED, due_at__gt=now).aggregate(first=Min("due_at"))["first"]
    run_after = min(upcoming or now + SWEEP, now + SWEEP)
    if not wakeups.filter(at__lte=run_after).exists():
        wake(run_after)


def reminders_plan(*, appointment: Appointment, replan: bool = False) -> list[Reminder]:
    """Plan (or `replan`, after a reschedule) the appointment's reminders; one already sent stays sent.

    Runs in the booking's or the reschedule's transaction, which holds the appointment. An offset
    whose time has already passed is skipped.
    """
    now = timezone.now()
    start = appointment_start(appointment)
    existing = {r.offset_seconds: r for r in Reminder.objects.filter(appointment=appointment)} if replan else {}
    new, changed, due_times = [], [], set()
    for offset in settings.REMINDER_OFFSETS:
        due_at = start - datetime.timedelta(seconds=offset)
        state = State.PLANNED if due_at >= now else State.SKIPPED
        if state == State.PLANNED:
            due_times.add(due_at)
        reminder = existing.pop(offset, None)
        if reminder is None:
            new.append(Reminder(appointment=appointment, offset_seconds=offset, due_at=due_at, state=state))
        elif reminder.state != State.SENT:
            reminder.due_at, reminder.state, reminder.claim, reminder.claimed_until = due_at, state, "", None
            changed.append(reminder)
    for reminder in existing.values():  # offsets no longer configured
        if reminder.state == State.PLANNED:
            reminder.state, reminder.claim, reminder.claimed_until = State.DROPPED, "", None
            changed.append(reminder)
    if new:
        Reminder.objects.bulk_create(new)
    if changed:
        Reminder.objects.bulk_update(changed, ["due_at", "state", "claim", "claimed_until"])
    if due_times and min(due_times) < now + SWEEP:  # sooner than the sweep's next run may be
        wake(min(due_times))  # that run queues the next one, at the next due time
    return new + changed


def reminders_drop(*, appointment: Appointment) -> int:
    """Drop the appointment's reminders not yet sent (it was cancelled, completed or a no-show); returns how many."""
    return Reminder.objects.filter(appointment=appointment, state=State.PLANNED).update(
        state=State.DROPPED, claim="", claimed_until=None
    )


@transaction.atomic
def _send_one(reminder_id: int, token: str) -> bool:
    """Send one claimed reminder if the claim is still ours: True when its notification was stored.

    Locks the appointment first, then the reminder (the order a reschedule or cancel takes them).
    """
    appointment_id = Reminder.objects.filter(pk=reminder_id).values_list("appointment_id", flat=True).first()
    if appointment_id is None:
        return False
    appointment = (
        Appointment.objects.select_related("patient", "doctor__user")
        .select_for_update(of=("self",))
        .get(pk=appointment_id)
    )
    reminder = Reminder.objects.select_for_update().filter(pk=reminder_id, claim=token, state=State.PLANNED).first()
    if reminder is None:  # re-planned, dropped, or taken by another worker after our lease ran out
        return False
    now = timezone.now()
    reminder.claim, reminder.claimed_until = "", None
    if not appointment.is_active:
        reminder.state = State.DROPPED
    elif now >= appointment_start(appointment):
        reminder.state = State.SKIPPED  # never after the start: too late to be of use
    elif reminder.due_at > now:  # not yet (a clock that moved back): let it be taken again when due
        reminder.save(update_fields=["claim", "claimed_until"])
        return False
    else:
        patient = appointment.patient
        notification = notification_about(
            patient, "reminder_patient", appointment, NotificationType.APPOINTMENT_REMINDER
        )
        reminder.notification = notifications_create(notifications=[notification])[0]
        reminder.state, reminder.sent_at = State.SENT, now
    reminder.save(update_fields=["state", "claim", "claimed_until", "notification", "sent_at"])
    return reminder.state == State.SENT


def reminders_send_due(*, limit: int = 100) -> int:
    """Claim the reminders whose time has come and send each once; returns how many were sent (the worker's task)."""
    sent = 0
    while True:
        now = timezone.now()
        due = Reminder.objects.filter(state=State.PLANNED, due_at__lte=now)
        token, ids = claim_due(due, now=now, limit=limit, on_claimed=wake)
        for reminder_id in ids:
            sent += _send_one(reminder_id, token)
        if len(ids) < limit:
            return sent


@task()
def send_due_reminders() -> int:
    """The worker's task: queue its next run (committed first, so a worker killed while sending
    breaks no chain), then send the reminders that are due."""
    sweep_schedule(now=timezone.now())
    return reminders_send_due()
