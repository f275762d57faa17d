"""Doctor queues: who is being served now, and how long a patient ahead takes."""

import datetime
import statistics

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Doctor
from appointments.models import ACTIVE_STATUSES, Appointment, Status
from appointments.texts import notification_about
from core import outbox, wirejson
from core.errors import InvalidInput
from core.wire import CLOSE_BOARD_CHANGED, CLOSE_SIGNED_OUT
from notifications.models import Notification
from notifications.services import notifications_create

from .models import Board, QueueAlert, QueueDay, new_board_token
from .selectors import board_doctors, check_can_run_queue, queue_state

UNSET = object()
# The contract's bounds: a queue number is a whole number of the wire (core.wirejson, which the REST
# parser and the socket enforce for every number: it fits PostgreSQL's integer column); a doctor's
# minutes per patient at most 600. The serializer, the admin and queue_update use these.
MAX_QUEUE_NUMBER = wirejson.MAX_INT
MAX_ESTIMATED_WAIT = 600
BOARD_NEXT = 3  # waiting numbers a board shows after the one being served
# Used only until a doctor has completed two consultations in the look-back window.
DEFAULT_MINUTES_PER_PATIENT = getattr(settings, "QUEUE_DEFAULT_MINUTES_PER_PATIENT", 15)
ESTIMATE_SAMPLE = 20  # most recent consultation gaps that the estimate uses
ESTIMATE_MAX_GAP = datetime.timedelta(hours=2)  # a longer gap is a break, not a consultation


def _at_most(maximum: int) -> str:
    return gettext("Ensure this value is less than or equal to %(limit_value)s.") % {"limit_value": maximum}


def _today() -> datetime.date:
    return timezone.localdate()


def queue_day(*, doctor: Doctor, date: datetime.date | None = None, lock: bool = False) -> QueueDay:
    """The queue row of a doctor's day, made on first use: for the services that change it (reads use
    selectors.queue_state, which writes nothing)."""
    date = date or _today()
    qs = QueueDay.objects.select_for_update() if lock else QueueDay.objects
    row = qs.filter(doctor=doctor, date=date).first()
    if row is None:
        try:
            with transaction.atomic():
                row = QueueDay.objects.create(doctor=doctor, date=date)
        except IntegrityError:  # made meanwhile by a concurrent caller
            pass
        row = qs.get(doctor=doctor, date=date)
    return row


def measured_minutes_per_patient(doctor_id: int) -> int:
    """The median time between successive completions of this doctor's recent consultations."""
    completions = list(
        Appointment.objects.filter(doctor_id=doctor_id, status=Status.COMPLETED, completed_at__isnull=False)
        .order_by("-completed_at")
        .values_list("completed_at", flat=True)[: ESTIMATE_SAMPLE + 1]
    )
    gaps = [
        (later - earlier).total_seconds() / 60
        for later, earlier in zip(completions, completions[1:], strict=False)
        if later - earlier <= ESTIMATE_MAX_GAP
    ]
    if not gaps:
        return DEFAULT_MINUTES_PER_PATIENT
    return max(1, round(statistics.median(gaps)))


def queue_snapshot(row: QueueDay) -> dict:
    """The queue object of the contract, as the API returns and `queue_updated` carries it.

    One query for the day's appointments after the current number: `waiting` counts the
    non-cancelled ones, `waiting_numbers` lists the still-active ones (a day holds dozens).
    """
    after_current = list(
        Appointment.objects.holding_slots()
        .filter(doctor_id=row.doctor_id, date=row.date, queue_number__gt=row.current_queue)
        .order_by("queue_number")
        .values_list("queue_number", "status")
    )
    estimate = row.estimated_wait if row.estimated_wait is not None else measured_minutes_per_patient(row.doctor_id)
    return {
        "doctor_id": row.doctor_id,
        "date": row.date.isoformat(),
        "current_queue": row.current_queue,
        "estimated_wait": estimate,
        "waiting": len(after_current),
        "waiting_numbers": [number for number, status in after_current if status in ACTIVE_STATUSES],
    }


def check_queue_update(*, actor, doctor: Doctor, current_queue: int, estimated_wait=UNSET) -> None:
    """queue_update's checks, for a form to show before anything is saved: who may, and the bounds."""
    check_can_run_queue(actor, doctor)
    if current_queue < 0:
        raise InvalidInput(gettext("Must be 0 or more."), field="current_queue")
    if current_queue > MAX_QUEUE_NUMBER:
        raise InvalidInput(_at_most(MAX_QUEUE_NUMBER), field="current_queue")
    if estimated_wait is not UNSET and estimated_wait is not None:
        if estimated_wait < 0:
            raise InvalidInput(gettext("Must be 0 or more."), field="estimated_wait")
        if estimated_wait > MAX_ESTIMATED_WAIT:
            raise InvalidInput(_at_most(MAX_ESTIMATED_WAIT), field="estimated_wait")


@transaction.atomic
def queue_update(
    *, actor, doctor: Doctor, current_queue: int, estimated_wait=UNSET, date: datetime.date | None = None
) -> QueueDay:
    """Set today's now-serving number (and the doctor's estimate; None returns to the measured one).

    That doctor or staff only. Broadcasts `queue_updated` after commit.
    """
    check_queue_update(actor=actor, doctor=doctor, current_queue=current_queue, estimated_wait=estimated_wait)
    row = queue_day(doctor=doctor, date=date, lock=True)
    row.current_queue = current_queue
    if estimated_wait is not UNSET:
        row.estimated_wait = estimated_wait
    row.save()
    queue_alerts_send(doctor_id=row.doctor_id, date=row.date, current_queue=row.current_queue)
    _tell_watchers(row)
    return row


@transaction.atomic
def queue_call_next(*, actor, doctor: Doctor) -> QueueDay:
    """Move today's queue to the next number whose appointment is still CONFIRMED."""
    check_can_run_queue(actor, doctor)
    row = queue_day(doctor=doctor, lock=True)
    following = (
        Appointment.objects.filter(
            doctor=doctor, date=row.date, status=Status.CONFIRMED, queue_number__gt=row.current_queue
        )
        .order_by("queue_number")
        .values_list("queue_number", flat=True)
        .first()
    )
    if following is None:
        raise InvalidInput(
            gettext("No confirmed appointment is waiting after #%(number)s.") % {"number": row.current_queue}
        )
    row.current_queue = following
    row.save()
    queue_alerts_send(doctor_id=row.doctor_id, date=row.date, current_queue=row.current_queue)
    _tell_watchers(row)
    return row


def _tell_watchers(row: QueueDay) -> None:
    """Every socket watching the queue gets its state as it stands at commit (read once, then)."""
    doctor_id = row.doctor_id
    outbox.queue_changed(doctor_id, row.date, read=lambda: queue_snapshot(queue_state(doctor_id=doctor_id)))


# The queue's alerts (contract v1.2): "It's your turn" and "You're next"

ALERT_TEXTS = {QueueAlert.Kind.CALLED: "queue_called_patient", QueueAlert.Kind.NEXT: "queue_next_patient"}


def _told(kind: str) -> Exists:
    return Exists(QueueAlert.objects.filter(appointment=OuterRef("pk"), kind=kind))


@transaction.atomic(savepoint=False)
def queue_alerts_send(*, doctor_id: int, date: datetime.date, current_queue: int | None = None) -> list[Notification]:
    """Tell the patient whose number the queue is at that it is their turn (QUEUE_CALLED), and the first
    one waiting after it that they are next (QUEUE_NEXT); returns the notifications stored.

    Only a CONFIRMED appointment of today, each kind at most once per appointment: the claim is a
    QueueAlert row, unique per (appointment, kind), inserted in this transaction with the notification,
    so two tabs calling next at once, a retry or a crash never tell anyone twice; a patient already
    called is not told they are next. Whoever changes the queue row holds its lock and passes
    `current_queue` (queue_update, queue_call_next); without it (after an appointment's change, see
    queues.receivers) the row's lock is taken here first, so a queue's alerts are decided one at a time.
    Nothing before the doctor calls the first number (the queue at 0). Two queries when nobody is to be
    told; a third claims, then the notifications are stored.
    """
    if date != _today():
        return []
    if current_queue is None:
        locked = (
            QueueDay.objects.select_for_update()
            .filter(doctor_id=doctor_id, date=date)
            .order_by()  # QueueDay's ordering would join the doctor and its user, and lock them too
            .values_list("current_queue", flat=True)
        )
        current_queue = next(iter(locked), 0)
    if current_queue == 0:
        # The doctor has not started: nobody is being served, and "you're next" would reach the day's
        # first patient hours early (booked at 7 for a 10 o'clock clinic), an SMS the clinic pays for.
        # Calling the first number tells #1 it is their turn and #2 they are next.
        return []
    # The one being served (if active) and the first one waiting after it: the queue's front two.
    front = list(
        Appointment.objects.filter(
            doctor_id=doctor_id, date=date, status__in=ACTIVE_STATUSES, queue_number__gte=current_queue
        )
        .select_related("patient", "doctor__user")
        .annotate(called=_told(QueueAlert.Kind.CALLED), warned=_told(QueueAlert.Kind.NEXT))
        .order_by("queue_number")[:2]
    )
    serving = front[0] if front and front[0].queue_number == current_queue else None
    waiting = next((a for a in front if a.queue_number > current_queue), None)
    wanted = []
    if serving is not None and serving.status == Status.CONFIRMED and not serving.called:
        wanted.append((serving, QueueAlert.Kind.CALLED))
    if waiting is not None and waiting.status == Status.CONFIRMED and not (waiting.called or waiting.warned):
        wanted.append((waiting, QueueAlert.Kind.NEXT))
    if not wanted:
        return []
    claimed = _claim_alerts([(appointment.pk, kind) for appointment, kind in wanted])
    notifications = [
        notification_about(appointment.patient, ALERT_TEXTS[kind], appointment, kind)
        for appointment, kind in wanted
        if (appointment.pk, kind) in claimed
    ]
    return notifications_create(notifications=notifications) if notifications else []


def _claim_alerts(pairs: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """Insert the (appointment id, kind) alert rows not there yet, in one statement; returns those inserted.

    ON CONFLICT DO NOTHING: a row another transaction holds uncommitted makes this one wait for it,
    then skip it, so exactly one of two racing callers gets each row (and tells the patient).
    """
    qn = connection.ops.quote_name
    table = qn(QueueAlert._meta.db_table)
    appointment_col = qn(QueueAlert._meta.get_field("appointment").column)
    kind_col, created_col = qn("kind"), qn("created_at")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    values = ", ".join(["(%s, %s, %s)"] * len(pairs))
    params = [value for appointment_id, kind in pairs for value in (appointment_id, str(kind), now)]
    sql = (
        f"INSERT INTO {table} ({appointment_col}, {kind_col}, {created_col}) VALUES {values} "  # noqa: S608 (quoted names, bound values)
        f"ON CONFLICT ({appointment_col}, {kind_col}) DO NOTHING RETURNING {appointment_col}, {kind_col}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(appointment_id, kind) for appointment_id, kind in cursor.fetchall()}


# Display boards


def board_queue(snapshot: dict, *, doctor_name: str) -> dict:
    """A board's queue object: the contract's queue object, the doctor's name and the next numbers."""
    return {**snapshot, "doctor_name": doctor_name, "next": snapshot["waiting_numbers"][:BOARD_NEXT]}


def board_queues(*, board: Board) -> list[dict]:
    """Today's queue of each of the board's doctors, as the board shows them; reads only (no queue row is made)."""
    doctors = board_doctors(board)
    rows = {row.doctor_id: row for row in QueueDay.objects.filter(doctor__in=doctors, date=_today())}
    return [
        board_queue(
            queue_snapshot(rows.get(doctor.pk) or QueueDay(doctor=doctor, date=_today())), doctor_name=doctor.name
        )
        for doctor in doctors
    ]


@transaction.atomic
def board_rotate_token(*, board: Board) -> Board:
    """Give the board a new secret: the old URL stops working and its open sockets close (after commit)."""
    board.token = new_board_token()
    board.save(update_fields=["token"])
    outbox.close_board_sockets(board.pk, CLOSE_SIGNED_OUT)  # the old URL no longer works
    return board


@transaction.atomic
def board_doctors_changed(*, board: Board) -> None:
    """After the board's doctors were edited: its open sockets close and reconnect to the new set."""
    outbox.close_board_sockets(board.pk, CLOSE_BOARD_CHANGED)
