import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from appointments.services import idempotency_records_prune
from documents.services import files_purge
from notifications.services import events_prune, push_messages_prune


class Command(BaseCommand):
    help = (
        "Delete what is kept past its retention: stored events (and Web Push messages sent or given up) older "
        "than EVENT_RETENTION_DAYS, "
        "idempotency records older than IDEMPOTENCY_RETENTION_HOURS, expired refresh tokens "
        "with their blacklist entries, the task queue's rows of tasks that ended over a day ago, and, when "
        "FILE_RETENTION_DAYS is set, the bytes of files removed longer ago than that (records and access logs stay). "
        "Safe to run at any time and as often as you like (e.g. daily)."
    )

    def handle(self, *args, **options):
        days, hours = settings.EVENT_RETENTION_DAYS, settings.IDEMPOTENCY_RETENTION_HOURS
        if days < 1 or hours < 1:
            raise CommandError("EVENT_RETENTION_DAYS and IDEMPOTENCY_RETENTION_HOURS must be at least 1.")
        file_days = settings.FILE_RETENTION_DAYS
        if file_days is not None and file_days < 1:
            raise CommandError("FILE_RETENTION_DAYS must be at least 1 (or unset: removed files are kept).")
        now = timezone.now()

        events = events_prune(before=now - datetime.timedelta(days=days))
        # Web Push messages sent or given up: kept as long as the events, for the record.
        pushes = push_messages_prune(before=now - datetime.timedelta(days=days))
        records = idempotency_records_prune(before=now - datetime.timedelta(hours=hours))
        # As simplejwt's flushexpiredtokens does, counted: an expired token can no longer be used,
        # blacklisted or not, so neither row is needed (the blacklist entry goes with its token).
        _, tokens = OutstandingToken.objects.filter(expires_at__lte=now).delete()
        # The task queue's rows of finished wake-ups (the reminders and deliveries keep their own
        # state), and of any a killed worker left "running": no task of ours runs for a day.
        day_ago = now - datetime.timedelta(days=1)
        tasks, _ = DBTaskResult.objects.filter(
            Q(finished_at__lt=day_ago) | Q(status="RUNNING", started_at__lt=day_ago)
        ).delete()

        # Off by default: a removed file's bytes are kept for the clinic's records until this is set.
        files = files_purge(removed_before=now - datetime.timedelta(days=file_days)) if file_days else 0

        self.stdout.write(
            f"prune: {events} event(s) older than {days} day(s), "
            f"{records} idempotency record(s) older than {hours} hour(s), "
            f"{tokens.get(OutstandingToken._meta.label, 0)} expired refresh token(s) "
            f"({tokens.get(BlacklistedToken._meta.label, 0)} of them blacklisted), "
            f"{tasks} task row(s) ended over a day ago removed."
        )
        self.stdout.write(f"prune: {pushes} Web Push message(s) sent or given up over {days} day(s) ago removed.")
        if file_days:
            self.stdout.write(
                f"prune: the bytes of {files} file(s) removed over {file_days} day(s) ago deleted "
                "(their records and access logs stay)."
            )
