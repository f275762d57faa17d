from django.conf import settings
from django.db import models

from appointments.models import Appointment

from .storage import random_name, select_storage


class File(models.Model):
    """A clinical document of one patient. Removing it (DELETE) hides it; bytes and record stay."""

    class Kind(models.TextChoices):
        PRESCRIPTION = "PRESCRIPTION", "Prescription"
        LAB_REPORT = "LAB_REPORT", "Lab report"
        IMAGING = "IMAGING", "Imaging"
        OTHER = "OTHER", "Other"

    class Status(models.TextChoices):
        SCANNING = "SCANNING", "Scanning"
        AVAILABLE = "AVAILABLE", "Available"
        REJECTED = "REJECTED", "Rejected"

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="files")
    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="files")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Health data (a title such as "Blood test"): shown to those who may see the file, never logged.
    title = models.CharField(max_length=200)
    # As the uploader's device named it: data only, for the download's file name; never a path.
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    content = models.FileField(storage=select_storage, upload_to=random_name, max_length=100)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    scan_attempts = models.PositiveIntegerField(default=0)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # When retention (FILE_RETENTION_DAYS) deleted the bytes of a removed file.
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "-created_at"], name="file_patient_newest")]

    def __str__(self):
        return f"File {self.pk} ({self.kind}, {self.status})"


class AccessLog(models.Model):
    """Who did what with a file, when. Append-only: the database refuses UPDATE and DELETE (migration 0001)."""

    class Action(models.TextChoices):
        UPLOAD = "UPLOAD", "Upload"
        LINK = "LINK", "Link"
        DOWNLOAD = "DOWNLOAD", "Download"
        DELETE = "DELETE", "Delete"
        # Retention deleted the bytes (by the system: no user). Not in the API's list, whose
        # actions the contract names; the admin shows it.
        PURGE = "PURGE", "Purge"

    file = models.ForeignKey(File, on_delete=models.PROTECT, related_name="access_log")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.action} file {self.file_id} by {self.user_id}"


class Prescription(models.Model):
    """One version of an appointment's prescription, as issued: never changed or deleted; a correction is
    the next version. Its PDF is a file of the patient's (`file`)."""

    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="prescriptions")
    version = models.PositiveIntegerField()
    # Health data: shown to those who may see the appointment, never logged, never in a notification.
    diagnosis = models.CharField(max_length=500, blank=True)
    advice = models.TextField(max_length=2000, blank=True)
    follow_up = models.DateField(null=True, blank=True)
    file = models.OneToOneField(File, on_delete=models.PROTECT, related_name="prescription")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["appointment", "version"]
        constraints = [
            models.UniqueConstraint(fields=["appointment", "version"], name="prescription_unique_version"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="prescription_version_from_1"),
        ]

    def __str__(self):
        return f"Prescription {self.appointment_id} v{self.version}"


class PrescriptionItem(models.Model):
    """One medicine of a prescription, in the order the doctor wrote them (`position` 1, 2, 3 …)."""

    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="items")
    position = models.PositiveSmallIntegerField()
    medicine = models.CharField(max_length=200)
    dose = models.CharField(max_length=100, blank=True)
    frequency = models.CharField(max_length=100, blank=True)
    duration = models.CharField(max_length=100, blank=True)
    instructions = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["prescription", "position"]
        constraints = [
            models.UniqueConstraint(fields=["prescription", "position"], name="prescription_item_unique_position"),
        ]

    def __str__(self):
        return f"{self.position}. {self.medicine}"
