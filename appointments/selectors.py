import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

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


def free_slots(*, doctor_id: int, date, start, end, step_minutes: int, now=None) -> list[dict]:
    """The doctor's grid of times for a day, each marked taken or free (a past time today is not free)."""
    taken = set(
        Appointment.objects.holding_slots().filter(doctor_id=doctor_id, date=date).values_list("time", flat=True)
    )
    now = now or timezone.localtime()
    slots, moment = [], dt.datetime.combine(date, start)
    while moment.time() < end and moment.date() == date:
        past = date == now.date() and moment.time() <= now.time().replace(tzinfo=None)
        slots.append({"time": moment.strftime("%H:%M"), "available": moment.time() not in taken and not past})
        moment += dt.timedelta(minutes=step_minutes)
    return slots


def appointment_history(appointment: Appointment):
    """The appointment's historical rows, oldest first, each with the user who made it."""
    return appointment.history.select_related("history_user").order_by("history_date", "history_id")
