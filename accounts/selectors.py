"""Reads of users and doctors that several callers share."""

from django.utils.translation import gettext

from core.errors import NotFound

from .models import Doctor


def active_doctors():
    """The doctors a patient can see and book: those whose account is active, with their user."""
    return Doctor.objects.select_related("user").filter(user__is_active=True)


def doctor_by_id(doctor_id: int) -> Doctor:
    """An active doctor; NotFound for any other id."""
    doctor = active_doctors().filter(pk=doctor_id).first()
    if doctor is None:
        raise NotFound(gettext("No such doctor."))
    return doctor
