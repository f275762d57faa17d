import secrets

from django.db import models

from accounts.models import Doctor
from appointments.models import Appointment


class QueueDay(models.Model):
    """One doctor's queue on one day: who is being served, and the doctor's own wait estimate."""

    doctor = models.ForeignKey(Doctor, on_delete=models.CASCADE, related_name="queue_days")
    date = models.DateField()
    current_queue = models.PositiveIntegerField(default=0)
    # Minutes per patient as the doctor set it; null means "derive it from measured consultations".
    estimated_wait = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "doctor"]
        constraints = [models.UniqueConstraint(fields=["doctor", "date"], name="queue_one_per_doctor_day")]

    def __str__(self):
        return f"{self.doctor} {self.date}: now #{self.current_queue}"


class QueueAlert(models.Model):
    """That an appointment's patient was told it is their turn (QUEUE_CALLED) or that they are next
    (QUEUE_NEXT): claimed in the transaction that stores the notification, at most one row per
    appointment and kind (the unique constraint), so no path, retry or race tells them twice."""

    class Kind(models.TextChoices):
        CALLED = "QUEUE_CALLED", "It's your turn"
        NEXT = "QUEUE_NEXT", "You're next"

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["appointment", "kind"], name="queue_alert_once")]

    def __str__(self):
        return f"{self.kind} for appointment {self.appointment_id}"


def new_board_token() -> str:
    """A fresh secret for a board's URL: 32 random URL-safe characters."""
    return secrets.token_urlsafe(24)


class Board(models.Model):
    """A waiting-room display: its doctors' queues, numbers only, at a secret URL (/board/<token>/)."""

    name = models.CharField(max_length=100)
    doctors = models.ManyToManyField(Doctor, related_name="boards")
    token = models.CharField(max_length=64, unique=True, default=new_board_token, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
