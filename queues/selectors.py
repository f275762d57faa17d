from accounts.models import Doctor, Role
from appointments.selectors import has_active_appointment


def can_run_queue(user, doctor: Doctor) -> bool:
    """That doctor or staff."""
    return user.is_admin or (user.role == Role.DOCTOR and doctor.user_id == user.pk)


def may_watch_queue(user, doctor: Doctor) -> bool:
    """The doctor, staff, or a patient with an active appointment with that doctor."""
    if can_run_queue(user, doctor):
        return True
    return user.role == Role.PATIENT and has_active_appointment(patient=user, doctor_id=doctor.pk)
