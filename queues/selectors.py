import datetime
import re

from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Doctor, Role
from appointments.selectors import has_active_appointment
from core.errors import NotAllowed

from .models import Board, QueueDay

# What `secrets.token_urlsafe` makes (and `seed_demo`'s `demo-board`); anything else is not looked up.
BOARD_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def can_run_queue(user, doctor: Doctor) -> bool:
    """That doctor or staff."""
    return user.is_admin or (user.role == Role.DOCTOR and doctor.user_id == user.pk)


def check_can_run_queue(user, doctor: Doctor) -> None:
    """NotAllowed unless `user` may run the doctor's queue."""
    if not can_run_queue(user, doctor):
        raise NotAllowed(gettext("Only this doctor or staff may run this queue."))


def may_watch_queue(user, doctor: Doctor) -> bool:
    """The doctor, staff, or a patient with an active appointment with that doctor."""
    if can_run_queue(user, doctor):
        return True
    return user.role == Role.PATIENT and has_active_appointment(patient=user, doctor_id=doctor.pk)


def board_by_token(token: str) -> Board | None:
    """The board at that secret, with its doctors (and their names) loaded; None for any other string."""
    if not isinstance(token, str) or not BOARD_TOKEN.fullmatch(token):
        return None
    return Board.objects.prefetch_related("doctors__user").filter(token=token).first()


def board_doctors(board: Board) -> list[Doctor]:
    """The board's doctors in the order the board shows them: by name."""
    return sorted(board.doctors.all(), key=lambda d: (d.user.name, d.pk))


def queue_state(*, doctor_id: int, date: datetime.date | None = None) -> QueueDay:
    """A doctor's queue row for a day (today by default) as it stands, read only: a day nobody has
    served yet is an unsaved row at number 0. Only the services that change a queue make its row."""
    date = date or timezone.localdate()
    return QueueDay.objects.filter(doctor_id=doctor_id, date=date).first() or QueueDay(doctor_id=doctor_id, date=date)
