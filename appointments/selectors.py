from django.db.models import QuerySet

from accounts.models import Role

from .models import ACTIVE_STATUSES, Appointment


def appointments_visible_to(user) -> QuerySet[Appointment]:
    """A patient sees their own, a doctor theirs, staff all; with the rows the object needs."""
    qs = Appointment.objects.select_related("patient", "doctor__user")
    if user.is_admin:
        return qs
    if user.role == Role.DOCTOR:
        return qs.filter(doctor__user=user)
    return qs.filter(patient=user)


def has_active_appointment(*, patient, doctor_id: int) -> bool:
    return Appointment.objects.filter(patient=patient, doctor_id=doctor_id, status__in=ACTIVE_STATUSES).exists()
