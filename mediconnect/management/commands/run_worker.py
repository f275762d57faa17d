"""`manage.py run_worker`: the task worker (reminders, offline email and SMS, Web Push, the doctors' digest).

django-tasks-db's `db_worker` (same options), after queueing one run of each sweep so that work
left by an older version or a database restored from backup is picked up at once. Run as many as
you like, on any machine that reaches the database: they share the work through row locks.
"""

from django.db import transaction
from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand

from appointments.digest import digest_schedule
from appointments.reminders import send_due_reminders
from notifications.delivery import send_due_deliveries
from notifications.webpush import send_due_pushes


class Command(DBWorkerCommand):
    help = "Run the task worker: reminders, offline email/SMS and Web Push (django-tasks-db's db_worker)."

    def handle(self, *args, **options):
        with transaction.atomic():
            send_due_reminders.enqueue()
            send_due_deliveries.enqueue()
            send_due_pushes.enqueue()
            digest_schedule()  # the doctors' next morning digest, when DOCTOR_DIGEST_AT is set
        return super().handle(*args, **options)
