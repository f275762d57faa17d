"""The call log of video visits: who joined and left when, whether it connected, relay or direct.

No content: no signal (SDP and ICE carry network addresses), no media, no recording. The visit page
reports what it saw (`POST /api/appointments/{id}/call/events/`); the ring's pause lives here too, so
it holds across server processes.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from appointments.models import Appointment


class Route(models.TextChoices):
    RELAY = "relay", "Relay (TURN)"
    DIRECT = "direct", "Direct"


class CallLog(models.Model):
    """One per appointment: its latest call (a call opens with a join when nobody is in, ends when both left)."""

    appointment = models.OneToOneField(Appointment, on_delete=models.CASCADE, related_name="call_log")
    rung_at = models.DateTimeField(null=True, blank=True)  # the doctor's last ring: the next waits RING_PAUSE
    calls = models.PositiveIntegerField(default=0)  # calls started for this appointment
    started_at = models.DateTimeField(null=True, blank=True)  # the latest call's first join
    connected_at = models.DateTimeField(null=True, blank=True)
    route = models.CharField(max_length=6, choices=Route.choices, blank=True)
    failed = models.BooleanField(default=False)  # the latest call failed before it connected
    ended_at = models.DateTimeField(null=True, blank=True)  # both had left

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"call of appointment {self.appointment_id}"

    @property
    def duration_seconds(self) -> int | None:
        """How long the latest call was connected (None: it never connected, or is still on)."""
        if self.connected_at is None or self.ended_at is None:
            return None
        return max(0, round((self.ended_at - self.connected_at).total_seconds()))


class CallEvent(models.Model):
    """One thing a participant's visit page reported."""

    class Kind(models.TextChoices):
        JOIN = "join", "Joined"
        CONNECTED = "connected", "Connected"
        FAILED = "failed", "Failed"
        LEAVE = "leave", "Left"

    log = models.ForeignKey(CallLog, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=9, choices=Kind.choices)
    route = models.CharField(max_length=6, choices=Route.choices, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["log", "user", "-at"], name="callevent_log_user_newest")]

    def __str__(self):
        return f"{self.event} by {self.user_id} at {self.at:%H:%M:%S}"
