from django.conf import settings
from django.db import models


class NotificationType(models.TextChoices):
    APPOINTMENT_BOOKED = "APPOINTMENT_BOOKED", "Appointment booked"
    APPOINTMENT_CONFIRMED = "APPOINTMENT_CONFIRMED", "Appointment confirmed"
    APPOINTMENT_CANCELLED = "APPOINTMENT_CANCELLED", "Appointment cancelled"
    APPOINTMENT_RESCHEDULED = "APPOINTMENT_RESCHEDULED", "Appointment rescheduled"
    REVIEW_REQUEST = "REVIEW_REQUEST", "Review request"


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    type = models.CharField(max_length=32, choices=NotificationType.choices)
    # Stored in the recipient's language when created.
    title = models.CharField(max_length=200)
    message = models.TextField()
    related_id = models.PositiveBigIntegerField(null=True, blank=True)
    related_type = models.CharField(max_length=50, blank=True)
    is_read = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_newest"),
            models.Index(fields=["user", "is_read"], name="notification_user_unread"),
        ]

    def __str__(self):
        return f"{self.type} → {self.user}"


class EventType(models.TextChoices):
    NEW_NOTIFICATION = "new_notification"
    NOTIFICATION_READ = "notification_read"
    ALL_NOTIFICATIONS_READ = "all_notifications_read"
    APPOINTMENT_UPDATED = "appointment_updated"


class Event(models.Model):
    """One entry of a user's event stream: the truth that sockets replay from.

    `seq` counts 1, 2, 3 ... per user, reserved from the user's `EventSequence` row, whose
    lock is held until the transaction commits, so a later seq is always committed after an
    earlier one; a socket that sees a jump knows exactly which events to fetch.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=32, choices=EventType.choices)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "seq"]
        constraints = [models.UniqueConstraint(fields=["user", "seq"], name="event_unique_seq_per_user")]

    def __str__(self):
        return f"{self.user_id}#{self.seq} {self.type}"


class EventSequence(models.Model):
    """The newest `Event.seq` handed out for a user: one row per user, made on their first event.

    `stream.record_many` bumps it with one upsert for every user of a change. The upsert locks
    the row until the transaction ends, so a user's events commit in the order of their seq,
    and a change that rolls back gives its numbers back.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.user_id}#{self.last_seq}"
