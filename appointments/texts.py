"""The texts of appointment notifications, rendered in each recipient's language when stored.

The appointment's reason is never part of them. Those that may go out by SMS to a user who is
offline (cancellations, reschedules, reminders, the queue's alerts) also have a one-segment SMS form.
"""

from django.utils import translation
from django.utils.translation import gettext_lazy as _

from notifications.models import Notification
from notifications.sms import fit_one_segment

from .models import Appointment

TEXTS = {
    "booked_doctor": (
        _("New Appointment"),
        _("{patient} booked an appointment for {date} at {time} (queue #{number})"),
    ),
    "confirmed_patient": (
        _("Appointment Confirmed"),
        _("Your appointment with {doctor} scheduled for {date} at {time}"),
    ),
    "cancelled_patient": (
        _("Appointment Cancelled"),
        _("Your appointment with {doctor} on {date} at {time} was cancelled"),
    ),
    "cancelled_doctor": (_("Appointment Cancelled"), _("{patient}'s appointment on {date} at {time} was cancelled")),
    "completed_patient": (_("How was your appointment?"), _("Please rate your visit with {doctor} on {date}.")),
    "rescheduled_patient": (
        _("Appointment Rescheduled"),
        _("Your appointment with {doctor} is now on {date} at {time}"),
    ),
    "rescheduled_doctor": (_("Appointment Rescheduled"), _("{patient}'s appointment is now on {date} at {time}")),
    "reminder_patient": (
        _("Appointment Reminder"),
        _("Reminder: your appointment with {doctor} is on {date} at {time}"),
    ),
    # The queue's alerts (queues.alerts), sent on the day: the doctor and the number, nothing else.
    "queue_called_patient": (_("It's your turn"), _("{doctor} is calling #{number}, your number: please go in now.")),
    "queue_next_patient": (_("You're next"), _("You're next in {doctor}'s queue, with #{number}: please be ready.")),
}

# The SMS forms: one segment each, also in Bangla (70 UTF-16 units); `{name}` (the other person) is
# shortened to fit when it is long. No reason; the queue's alerts name the number (`{number}`).
SMS_TEXTS = {
    "cancelled_patient": _("Cancelled: your appointment with {name} on {date} at {time}. MediConnect"),
    "cancelled_doctor": _("Cancelled: {name}'s appointment on {date} at {time}. MediConnect"),
    "rescheduled_patient": _("Rescheduled: your appointment with {name} is now {date} at {time}. MediConnect"),
    "rescheduled_doctor": _("Rescheduled: {name}'s appointment is now {date} at {time}. MediConnect"),
    "reminder_patient": _("Reminder: your appointment with {name} on {date} at {time}. MediConnect"),
    "queue_called_patient": _("Your turn: {name} is calling #{number}. MediConnect"),
    "queue_next_patient": _("You're next: {name}, #{number}. MediConnect"),
}


def notification_about(user, key: str, appointment: Appointment, kind: str) -> Notification:
    """An unsaved notification about `appointment` for `user`, in the user's language (with its SMS form)."""
    title, message = TEXTS[key]
    with translation.override(user.language or "en"):
        params = {
            "doctor": appointment.doctor.user.name,
            "patient": appointment.patient.name,
            "date": appointment.date.isoformat(),
            "time": appointment.time.strftime("%H:%M"),
            "number": appointment.queue_number,
        }
        notification = Notification(
            user=user,
            type=kind,
            title=str(title),
            message=str(message).format(**params),
            related_id=appointment.pk,
            related_type="Appointment",
        )
        if key in SMS_TEXTS:
            other = params["patient"] if key.endswith("_doctor") else params["doctor"]
            notification.sms_text = fit_one_segment(
                str(SMS_TEXTS[key]), name=other, date=params["date"], time=params["time"], number=params["number"]
            )
    return notification
