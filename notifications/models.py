from django.conf import settings
from django.db import models

from core import wire


class NotificationType(models.TextChoices):
    APPOINTMENT_BOOKED = "APPOINTMENT_BOOKED", "Appointment booked"
    APPOINTMENT_CONFIRMED = "APPOINTMENT_CONFIRMED", "Appointment confirmed"
    APPOINTMENT_CANCELLED = "APPOINTMENT_CANCELLED", "Appointment cancelled"
    APPOINTMENT_RESCHEDULED = "APPOINTMENT_RESCHEDULED", "Appointment rescheduled"
    REVIEW_REQUEST = "REVIEW_REQUEST", "Review request"
    APPOINTMENT_REMINDER = "APPOINTMENT_REMINDER", "Appointment reminder"
    DOCTOR_DIGEST = "DOCTOR_DIGEST", "Doctor's day digest"
    DOCUMENT_ADDED = "DOCUMENT_ADDED", "Document added"
    DOCUMENT_REJECTED = "DOCUMENT_REJECTED", "Document rejected"
    PRESCRIPTION_ISSUED = "PRESCRIPTION_ISSUED", "Prescription issued"
    # v1.2, mobile: the queue reached the patient's number, or they are next in line.
    QUEUE_CALLED = "QUEUE_CALLED", "Queue: your turn"
    QUEUE_NEXT = "QUEUE_NEXT", "Queue: you are next"
    # v1.2, video visits: the doctor rings the patient.
    VIDEO_CALL = "VIDEO_CALL", "Video visit call"


# The notifications a user with no open socket also gets by email and SMS (contract v1.1), and a
# prescription ready to collect (v1.2: its text names neither the diagnosis nor a medicine).
OFFLINE_TYPES = frozenset(
    {
        NotificationType.APPOINTMENT_CANCELLED,
        NotificationType.APPOINTMENT_RESCHEDULED,
        NotificationType.APPOINTMENT_REMINDER,
        NotificationType.PRESCRIPTION_ISSUED,
    }
)
# The ones a user with no open socket gets by SMS only (v1.2): an email about your turn in the queue,
# or a doctor ringing for a video visit, would arrive too late to act on.
SMS_ONLY_TYPES = frozenset(
    {
        NotificationType.QUEUE_CALLED,
        NotificationType.QUEUE_NEXT,
        NotificationType.VIDEO_CALL,
    }
)


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

    # Not stored: the message in one SMS segment (no longer than 70 characters in Bangla), set by
    # whoever makes a notification that may go out by SMS to a user who is offline.
    sms_text = ""

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_newest"),
            models.Index(fields=["user", "is_read"], name="notification_user_unread"),
        ]

    def __str__(self):
        return f"{self.type} → {self.user}"


class EventType(models.TextChoices):
    """The per-user frame types of core/wire.py, as the stored stream names them."""

    NEW_NOTIFICATION = wire.NEW_NOTIFICATION
    NOTIFICATION_READ = wire.NOTIFICATION_READ
    ALL_NOTIFICATIONS_READ = wire.ALL_NOTIFICATIONS_READ
    APPOINTMENT_UPDATED = wire.APPOINTMENT_UPDATED
    FILE_UPDATED = wire.FILE_UPDATED


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


class Delivery(models.Model):
    """A notification to send by email or SMS unless a socket of its user was alive after it was made.

    Made in the transaction that stores the notification, sent by the task worker after commit
    unless presence shows by then that one of the user's sockets was there to see it (SEEN).
    A worker claims a due row with a lease, as reminders are claimed; a failed send is tried again
    later (`due_at` moves out, doubling) up to DELIVERY_MAX_ATTEMPTS, and the notification itself
    is never touched. The text is fixed when the row is made, in the user's language, with no
    appointment reason.
    """

    class Channel(models.TextChoices):
        EMAIL = "EMAIL", "Email"
        SMS = "SMS", "SMS"

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed"  # gave up after DELIVERY_MAX_ATTEMPTS
        SEEN = "SEEN", "Seen"  # not sent: a socket of the user was alive after the notification was made

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=5, choices=Channel.choices)
    address = models.CharField(max_length=254)  # the email address or phone number, as it was then
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    state = models.CharField(max_length=7, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField()
    claim = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="delivery_one_per_channel"),
        ]
        indexes = [models.Index(fields=["due_at"], condition=models.Q(state="PENDING"), name="delivery_pending_due")]

    def __str__(self):
        return f"{self.channel} {self.notification_id} {self.state}"


class PushSubscription(models.Model):
    """A browser's Web Push subscription (contract v1.2): where and how to send its user's notifications.

    `endpoint` is the push service's URL for this browser, `p256dh` its P-256 public key and `auth`
    its 16-byte secret (both base64url, as `PushSubscription.toJSON()` gives them): the message is
    encrypted to them (RFC 8291). One row per endpoint and user; a push service that answers 404 or
    410 has forgotten the browser, and the row goes (webpush.py). Deactivation or a new password
    deletes all of a user's rows (signals.py).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.CharField(max_length=1024)
    p256dh = models.CharField(max_length=100)
    auth = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "endpoint"], name="push_subscription_one_per_endpoint")]

    def __str__(self):
        return f"push {self.pk} → {self.user_id}"


class PushMessage(models.Model):
    """One notification to send to one subscription, by the task worker (webpush.py).

    Made in the transaction that stores the notification; claimed with a lease (core.leases) and
    sent after commit. A push service's 2xx makes it SENT, never sent again; 429, 5xx and network
    errors put it off (`due_at`, honouring Retry-After) up to PUSH_MAX_ATTEMPTS, then FAILED. A
    404/410 deletes the subscription and with it this row. The payload is built at send time from
    the notification, so nothing but ids is stored here.
    """

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="push_messages")
    subscription = models.ForeignKey(PushSubscription, on_delete=models.CASCADE, related_name="messages")
    state = models.CharField(max_length=7, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField()
    claim = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)  # the push service's last HTTP status
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "subscription"], name="push_message_one_per_subscription"),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=models.Q(state="PENDING"), name="push_message_pending_due")
        ]

    def __str__(self):
        return f"push {self.notification_id} → {self.subscription_id} {self.state}"
