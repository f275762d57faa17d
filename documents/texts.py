"""The texts of document notifications, in each recipient's language when stored.

A file's title is health data ("Blood test"): it is never part of them, so no email, SMS, push or
log that carries a notification carries it.
"""

from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from notifications.models import Notification, NotificationType
from notifications.sms import fit_one_segment

from .models import File

TEXTS = {
    "added_patient": (_("New document"), _("{uploader} added a document to your records.")),
    "added_doctor": (_("New document"), _("{patient} added a document to the appointment on {date}.")),
    "rejected_uploader": (
        _("Document rejected"),
        _("A document you uploaded on {date} was rejected by the virus scanner and is not available."),
    ),
}
KINDS = {
    "added_patient": NotificationType.DOCUMENT_ADDED,
    "added_doctor": NotificationType.DOCUMENT_ADDED,
    "rejected_uploader": NotificationType.DOCUMENT_REJECTED,
}


def notification_about(user, key: str, file: File) -> Notification:
    """An unsaved notification about `file` for `user`, in the user's language."""
    title, message = TEXTS[key]
    with translation.override(user.language or "en"):
        params = {
            "uploader": file.uploaded_by.name,
            "patient": file.patient.name,
            "date": (file.appointment.date if file.appointment_id else timezone.localdate(file.created_at)).isoformat(),
        }
        return Notification(
            user=user,
            type=KINDS[key],
            title=str(title),
            message=str(message).format(**params),
            related_id=file.pk,
            related_type="File",
        )


# A prescription's notification names the doctor and the visit's date only: no diagnosis, no medicine,
# since it also goes out by email and SMS (the SMS in one segment, its `{name}` shortened to fit).
PRESCRIPTION_TEXTS = (
    _("Prescription ready"),
    _("{doctor} issued your prescription for the appointment on {date}. Open MediConnect to see it."),
)
PRESCRIPTION_SMS = _("Your prescription from {name} is ready. MediConnect")


def prescription_notification(patient, appointment) -> Notification:
    """An unsaved PRESCRIPTION_ISSUED for the appointment's patient, in their language (with its SMS form)."""
    title, message = PRESCRIPTION_TEXTS
    with translation.override(patient.language or "en"):
        doctor = appointment.doctor.user.name
        notification = Notification(
            user=patient,
            type=NotificationType.PRESCRIPTION_ISSUED,
            title=str(title),
            message=str(message).format(doctor=doctor, date=appointment.date.isoformat()),
            related_id=appointment.pk,
            related_type="Appointment",
        )
        notification.sms_text = fit_one_segment(str(PRESCRIPTION_SMS), name=doctor)
    return notification
