from django.db import models

from accounts.models import Doctor


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
