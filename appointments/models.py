from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from accounts.models import Doctor


class Status(models.TextChoices):
    PENDING = "PENDING", "Pending"
    CONFIRMED = "CONFIRMED", "Confirmed"
    COMPLETED = "COMPLETED", "Completed"
    CANCELLED = "CANCELLED", "Cancelled"
    NO_SHOW = "NO_SHOW", "No-show"


class Mode(models.TextChoices):
    """How the visit happens (contract v1.2, video visits)."""

    IN_PERSON = "IN_PERSON", "In person"
    VIDEO = "VIDEO", "Video"


ACTIVE_STATUSES = (Status.PENDING, Status.CONFIRMED)
# An appointment holds its slot (doctor, date, time) until it is cancelled: a finished or missed one
# still holds it, so the time is not offered again. The database keeps the rule (a unique constraint).
HOLDS_SLOT = ~Q(status=Status.CANCELLED)


class AppointmentQuerySet(models.QuerySet):
    def holding_slots(self):
        return self.filter(HOLDS_SLOT)


class Appointment(models.Model):
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appointments")
    doctor = models.ForeignKey(Doctor, on_delete=models.PROTECT, related_name="appointments")
    date = models.DateField()
    time = models.TimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CONFIRMED)
    queue_number = models.PositiveIntegerField(editable=False)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.IN_PERSON)
    # Personal health detail: shown to the patient, their doctor and staff only; never in logs or push text.
    reason = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The audit trail: a row per save, with who made it (the services set `_history_user` to
    # their actor; None is the system). The row's own `history_date` says when, so the
    # timestamps are not copied.
    objects = AppointmentQuerySet.as_manager()

    history = HistoricalRecords(
        excluded_fields=["created_at", "updated_at"],
        user_related_name="+",
        history_id_field=models.BigAutoField(primary_key=True, serialize=False),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["doctor", "date", "time"],
                condition=HOLDS_SLOT,
                name="appointment_one_holder_per_slot",
            ),
            models.UniqueConstraint(fields=["doctor", "date", "queue_number"], name="appointment_unique_queue_number"),
        ]
        indexes = [
            models.Index(fields=["patient", "-created_at"], name="appointment_patient_newest"),
            models.Index(fields=["doctor", "-created_at"], name="appointment_doctor_newest"),
        ]

    def __str__(self):
        return f"#{self.queue_number} {self.date} {self.time:%H:%M} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class IdempotencyRecord(models.Model):
    """The first response to a booking sent with an `Idempotency-Key`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_key_per_user")]

    def __str__(self):
        return f"{self.user_id}:{self.key}"


class Reminder(models.Model):
    """One planned reminder: an appointment and an offset before its start (REMINDER_OFFSETS).

    One row per appointment and offset (the database keeps it so), sent at most once: a worker
    claims a due row with a lease (`claimed_until`, `claim`), then stores the notification and
    marks the row SENT in one transaction that checks its claim is still its own. A worker that
    dies holding a claim loses it when the lease runs out, and another takes the row.
    """

    class State(models.TextChoices):
        PLANNED = "PLANNED", "Planned"
        SENT = "SENT", "Sent"
        SKIPPED = "SKIPPED", "Skipped"  # its time had passed (at booking, or the worker was down past the start)
        DROPPED = "DROPPED", "Dropped"  # the appointment is no longer active

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="reminders")
    offset_seconds = models.PositiveIntegerField()
    due_at = models.DateTimeField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PLANNED)
    claim = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    notification = models.ForeignKey(
        "notifications.Notification", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["appointment", "offset_seconds"], name="reminder_one_per_offset"),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(state="PLANNED"), name="reminder_planned_due"),
        ]

    def __str__(self):
        return f"{self.appointment_id} -{self.offset_seconds}s {self.state}"


class DoctorDigest(models.Model):
    """A doctor's morning digest of one day (DOCTOR_DIGEST_AT): one row per doctor and day, so it goes once."""

    doctor = models.ForeignKey(Doctor, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    notification = models.ForeignKey(
        "notifications.Notification", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["doctor", "date"], name="digest_one_per_doctor_day")]

    def __str__(self):
        return f"{self.doctor_id} {self.date}"


class Wakeup(models.Model):
    """A run of one of our periodic tasks, queued for `at` and not started yet (reminders, doctors' digest).

    Written with the task's queueing, in the same transaction, and deleted when a run of that task
    starts at or after `at`: so a sweep tells whether a run is already queued from a row of ours,
    not from the task backend's own table.
    """

    task = models.CharField(max_length=200)  # the task's module_path
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["task", "at"], name="wakeup_task_at")]

    def __str__(self):
        return f"{self.task} at {self.at:%Y-%m-%d %H:%M:%S}"
