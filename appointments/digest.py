"""The doctors' morning digest (optional, DOCTOR_DIGEST_AT): each morning, the day's count and first time.

A task queued for the digest time of a day sends the digests of that day, one per doctor with
active appointments (a unique row per doctor and day: two workers, or a task run twice, send one),
then queues itself for the next day. `run_worker` queues the next one when it starts; a run finds
the next day's task already queued (by another worker's chain) and queues none, so chains never
multiply for long.
"""

import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Min
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django_tasks import task

from accounts.models import Doctor
from notifications.models import NotificationType
from notifications.services import notification_create

from .models import ACTIVE_STATUSES, Appointment, DoctorDigest, Wakeup

TITLE = _("Today's appointments")
MESSAGE = _("You have {count} appointment(s) today, the first at {time}.")


def digest_time(day: datetime.date) -> datetime.datetime:
    """When the digest of `day` goes out: DOCTOR_DIGEST_AT that day, in the clinic's time zone."""
    at = datetime.time.fromisoformat(settings.DOCTOR_DIGEST_AT)
    return timezone.make_aware(datetime.datetime.combine(day, at), timezone.get_default_timezone())


@transaction.atomic
def digest_schedule(*, now: datetime.datetime | None = None) -> bool:
    """Queue the next digest run (the next DOCTOR_DIGEST_AT after `now`) unless it is queued; False when off.

    Which runs are queued is known from Wakeup rows of ours, written with each run's queueing; those
    due by `now` are for runs that are due (or were missed) and are forgotten here.
    """
    if not settings.DOCTOR_DIGEST_AT:
        return False
    now = now or timezone.now()
    day = timezone.localtime(now).date()
    if digest_time(day) <= now:
        day += datetime.timedelta(days=1)
    run_after = digest_time(day)
    wakeups = Wakeup.objects.filter(task=send_doctor_digests.module_path)
    wakeups.filter(at__lte=now).delete()
    if not wakeups.filter(at=run_after).exists():
        send_doctor_digests.using(run_after=run_after).enqueue(day.isoformat())
        Wakeup.objects.create(task=send_doctor_digests.module_path, at=run_after)
    return True


def digests_send(*, day: datetime.date) -> int:
    """Send the digest of `day` to every doctor with active appointments that day; returns how many were sent."""
    rows = (
        Appointment.objects.filter(date=day, status__in=ACTIVE_STATUSES)
        .values("doctor")
        .annotate(count=Count("pk"), first=Min("time"))
    )
    doctors = Doctor.objects.select_related("user").in_bulk([row["doctor"] for row in rows])
    sent = 0
    for row in rows:
        doctor = doctors[row["doctor"]]
        try:
            with transaction.atomic():
                digest = DoctorDigest.objects.create(doctor=doctor, date=day)
                user = doctor.user
                with translation.override(user.language or "en"):
                    title = str(TITLE)
                    message = str(MESSAGE).format(count=row["count"], time=row["first"].strftime("%H:%M"))
                digest.notification = notification_create(
                    user=user, type=NotificationType.DOCTOR_DIGEST, title=title, message=message
                )
                digest.save(update_fields=["notification"])
        except IntegrityError:
            continue  # already sent (another worker, or this task run twice)
        sent += 1
    return sent


@task()
def send_doctor_digests(day: str) -> int:
    """The worker's task: the digests of `day` (skipped when the worker comes to it a day late), then the next run."""
    sent = 0
    if settings.DOCTOR_DIGEST_AT and datetime.date.fromisoformat(day) == timezone.localdate():
        sent = digests_send(day=datetime.date.fromisoformat(day))
    digest_schedule()
    return sent
