"""The ring's notification, in the patient's language. Never the appointment's reason."""

from django.utils import translation
from django.utils.translation import gettext_lazy as _

from notifications.models import Notification, NotificationType
from notifications.sms import fit_one_segment

RING_TITLE = _("Video visit")
RING_MESSAGE = _("{doctor} is calling you")
RING_SMS = _("{name} is calling you for your video visit. MediConnect")


def ring_notification(*, patient, doctor_name: str, appointment_id: int) -> Notification:
    """An unsaved VIDEO_CALL notification for `patient`, with its one-segment SMS form."""
    with translation.override(patient.language or "en"):
        notification = Notification(
            user=patient,
            type=NotificationType.VIDEO_CALL,
            title=str(RING_TITLE),
            message=str(RING_MESSAGE).format(doctor=doctor_name),
            related_id=appointment_id,
            related_type="Appointment",
        )
        notification.sms_text = fit_one_segment(str(RING_SMS), name=doctor_name)
    return notification
