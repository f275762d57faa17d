"""Who may see which files: the one rule, used by the API's lists and reads, links, removal, the
access log, the events and the admin.

A patient's files are seen by the patient, by a doctor who has or had a non-cancelled appointment
with that patient (past or future, any of their files), and by admins. Nobody else learns they exist.
"""

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import Role
from appointments.models import Appointment, Status
from appointments.selectors import appointments_visible_to

from .models import AccessLog, File, Prescription
from .payloads import LISTED_ACTIONS


def _treated_by(user) -> QuerySet[Appointment]:
    return Appointment.objects.filter(doctor__user=user).exclude(status=Status.CANCELLED)


def may_see_patient(user, patient_id: int) -> bool:
    """Whether `user` may see the files of the patient `patient_id`."""
    if user.is_admin:
        return True
    if user.pk == patient_id:
        return True
    return user.role == Role.DOCTOR and _treated_by(user).filter(patient_id=patient_id).exists()


def files_visible_to(user, *, include_removed: bool = False) -> QuerySet[File]:
    """The files `user` may see, newest first, with the rows the object needs; removed ones only on request."""
    qs = File.objects.select_related("patient", "uploaded_by")
    if not include_removed:
        qs = qs.filter(removed_at__isnull=True)
    if user.is_admin:
        return qs
    mine = Q(patient_id=user.pk)
    if user.role == Role.DOCTOR:
        return qs.filter(mine | Exists(_treated_by(user).filter(patient_id=OuterRef("patient_id"))))
    return qs.filter(mine)


def file_access_log(file: File) -> QuerySet[AccessLog]:
    """The file's access log as the API lists it, oldest first, each entry with its user."""
    return file.access_log.filter(action__in=LISTED_ACTIONS).select_related("user").order_by("at", "id")


def prescriptions_of(user, appointment_id: int) -> QuerySet[Prescription] | None:
    """The prescriptions of an appointment `user` may see, oldest version first, items loaded; None when they
    may not see the appointment (or it does not exist)."""
    if not appointments_visible_to(user).filter(pk=appointment_id).exists():
        return None
    return Prescription.objects.filter(appointment_id=appointment_id).prefetch_related("items").order_by("version")
