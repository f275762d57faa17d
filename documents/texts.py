"""The texts of document notifications, in each recipient's language when stored.

A file's title is health data ("Blood test"): it is never part of them, so no email, SMS, push or
log that carries a notification carries it.
"""

from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from notifications.models import Notification, NotificationType

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
