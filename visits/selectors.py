"""Who may take part in a video visit, and when: the rules of `GET /api/appointments/{id}/call/`.

The REST views and the socket's `call_signal` ask the same function, so they never disagree.
"""

import datetime
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Role
from appointments.models import Appointment, Mode, Status
from appointments.selectors import appointments_visible_to
from core.errors import Conflict, NotAllowed, NotFound
from core.wirejson import MAX_INT

OPENS_BEFORE = datetime.timedelta(minutes=15)
CLOSES_AFTER = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class CallAccess:
    """A participant's view of a call: the appointment, who is at the other end, and the call's window."""

    appointment: Appointment
    role: str  # the caller's: Role.PATIENT or Role.DOCTOR
    peer_id: int
    peer_name: str
    peer_role: str
    opens: datetime.datetime
    closes: datetime.datetime

    def is_open(self, now: datetime.datetime) -> bool:
        return self.opens <= now <= self.closes


def call_window(appointment: Appointment) -> tuple[datetime.datetime, datetime.datetime]:
    """From 15 minutes before the appointment's time until 2 hours after, in the clinic's time zone."""
    start = timezone.make_aware(datetime.datetime.combine(appointment.date, appointment.time))
    return start - OPENS_BEFORE, start + CLOSES_AFTER


def call_participant(user, appointment_id: int) -> CallAccess:
    """The appointment's patient or doctor, whatever its state: NotFound for an appointment `user` may not
    see, NotAllowed for anyone else who may (staff, say). One query."""
    appointment = None
    if 0 < appointment_id <= MAX_INT:
        appointment = appointments_visible_to(user).filter(pk=appointment_id).order_by().first()
    if appointment is None:
        raise NotFound(gettext("No such appointment."))
    doctor_user = appointment.doctor.user
    if appointment.patient_id == user.pk:
        role, peer = Role.PATIENT, doctor_user
    elif doctor_user.pk == user.pk:
        role, peer = Role.DOCTOR, appointment.patient
    else:
        raise NotAllowed(gettext("Only the appointment's patient and doctor take part in its video visit."))
    opens, closes = call_window(appointment)
    return CallAccess(appointment, role, peer.pk, peer.name, peer.role, opens, closes)


def call_open_to(user, appointment_id: int, *, now: datetime.datetime | None = None) -> CallAccess:
    """`call_participant`, and the call must be open now: a CONFIRMED video visit within its window
    (else Conflict)."""
    access = call_participant(user, appointment_id)
    check_call_open(access, now=now)
    return access


def check_call_open(access: CallAccess, *, now: datetime.datetime | None = None) -> None:
    appointment = access.appointment
    if appointment.mode != Mode.VIDEO:
        raise Conflict(gettext("This appointment is not a video visit."))
    if appointment.status != Status.CONFIRMED:
        raise Conflict(gettext("Only a confirmed appointment's video visit can take place."))
    if not access.is_open(now or timezone.now()):
        raise Conflict(gettext("The video visit opens 15 minutes before its time and closes 2 hours after."))
