"""Every change to an appointment: the API, portals, admin and socket all call these."""

import datetime
from contextlib import nullcontext

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from accounts.models import Doctor, Role
from core import outbox
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from notifications.models import EventType, Notification, NotificationType
from notifications.services import notifications_create

from .models import ACTIVE_STATUSES, HOLDS_SLOT, Appointment, IdempotencyRecord, Mode, Status
from .payloads import appointment_payload
from .reminders import reminders_drop, reminders_plan
from .selectors import has_active_appointment
from .signals import queue_days_changed
from .texts import notification_about as _notification

PATIENT, DOCTOR, ADMIN = "patient", "doctor", "admin"

# The one table of status moves: (from, to) → who may make it.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (Status.PENDING, Status.CONFIRMED): frozenset({DOCTOR, ADMIN}),
    (Status.PENDING, Status.CANCELLED): frozenset({PATIENT, DOCTOR, ADMIN}),
    (Status.CONFIRMED, Status.CANCELLED): frozenset({PATIENT, DOCTOR, ADMIN}),
    (Status.CONFIRMED, Status.COMPLETED): frozenset({DOCTOR, ADMIN}),
    (Status.CONFIRMED, Status.NO_SHOW): frozenset({DOCTOR, ADMIN}),
}


def role_in(appointment: Appointment, user) -> str | None:
    """How `user` relates to `appointment`: its patient, its doctor, staff, or nobody."""
    if user.is_admin:
        return ADMIN
    if appointment.patient_id == user.pk:
        return PATIENT
    if user.role == Role.DOCTOR and appointment.doctor.user_id == user.pk:
        return DOCTOR
    return None


def check_transition(*, appointment: Appointment, actor, to_status: str) -> None:
    """The guard: raise InvalidInput for a move that does not exist, NotAllowed for a role that may not make it."""
    role = role_in(appointment, actor)
    if role is None:
        raise NotFound(gettext("No such appointment."))
    allowed = TRANSITIONS.get((appointment.status, to_status))
    if allowed is None:
        raise InvalidInput(
            gettext("An appointment cannot move from %(old)s to %(new)s.")
            % {"old": appointment.status, "new": to_status},
            field="status",
        )
    if role not in allowed:
        raise NotAllowed(
            gettext("A %(role)s may not move an appointment to %(new)s.") % {"role": role, "new": to_status}
        )


def _publish(appointment: Appointment, notifications: list[Notification], *, queue_days=()) -> None:
    """Store a change's notifications and tell its patient and doctor with `appointment_updated`;
    the doctor's queue on `queue_days` changed too (its watchers hear it after commit).

    One INSERT for the notifications, one upsert for the sequence numbers and one INSERT for
    all the events: each user hears their notification first, then the appointment's new state.
    """
    data = appointment_payload(appointment)
    notifications_create(
        notifications=notifications,
        events=[
            (user_id, EventType.APPOINTMENT_UPDATED, data)
            for user_id in (appointment.patient_id, appointment.doctor.user_id)
        ],
    )
    # No reader: the queue is counted on the floor above; each server process with watchers reads it.
    outbox.queue_changed(appointment.doctor_id, *queue_days)
    if queue_days:  # the queue's alerts (on the floor above) follow who is now first in line
        queue_days_changed.send(sender=Appointment, doctor_id=appointment.doctor_id, days=tuple(queue_days))


def _lock_bookable_doctor(doctor_id: int) -> Doctor:
    """The doctor with their user, the doctor's row locked: serialises bookings of one doctor, so the
    slot check and the next queue number are read safely. One query; an unknown or deactivated
    doctor is a 400 on `doctor`. FOR UPDATE OF the doctor only: the user's row stays unlocked."""
    try:
        # get(), not first(): no ORDER BY to compile (Doctor's default ordering joins the user's name).
        return (
            Doctor.objects.select_related("user")
            .select_for_update(of=("self",))
            .get(pk=doctor_id, user__is_active=True)
        )
    except Doctor.DoesNotExist:
        raise InvalidInput(gettext("No such doctor."), field="doctor") from None


def _lock_doctor(doctor_id: int) -> None:
    # Serialises bookings of one doctor, so the slot check and the next queue number are read safely.
    # Only the lock: the callers already hold the doctor they need.
    # No ordering: Doctor's default one joins the user, whose row FOR UPDATE would lock too.
    if not Doctor.objects.select_for_update().filter(pk=doctor_id).order_by().values_list("pk", flat=True):
        raise NotFound(gettext("No such doctor."))


def _slot_holders(*, time: datetime.time, exclude_id: int | None = None) -> Q:
    holders = Q(time=time) & HOLDS_SLOT
    return holders & ~Q(pk=exclude_id) if exclude_id else holders


def _slot_taken(*, doctor_id: int, date: datetime.date, time: datetime.time, exclude_id: int | None = None) -> bool:
    holders = _slot_holders(time=time, exclude_id=exclude_id)
    return Appointment.objects.filter(holders, doctor_id=doctor_id, date=date).exists()


def _claim_slot(
    *,
    doctor_id: int,
    date: datetime.date,
    time: datetime.time,
    exclude_id: int | None = None,
    limited_patient_id: int | None = None,
) -> int:
    """Raise Conflict when the slot is held, or when `limited_patient_id` already holds the most active
    appointments one patient may have with the doctor that day; else the day's next queue number.
    One query (under the doctor lock)."""
    counts = {"holders": Count("pk", filter=_slot_holders(time=time, exclude_id=exclude_id))}
    if limited_patient_id is not None:
        mine = Q(patient_id=limited_patient_id, status__in=ACTIVE_STATUSES)
        counts["mine"] = Count("pk", filter=mine & ~Q(pk=exclude_id) if exclude_id else mine)
    day = Appointment.objects.filter(doctor_id=doctor_id, date=date).aggregate(last=Max("queue_number"), **counts)
    if day["holders"]:
        raise Conflict(gettext("That time is already booked with this doctor."), field="time")
    limit = settings.BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY
    if day.get("mine", 0) >= limit:
        raise Conflict(
            ngettext(
                "You already have %(limit)d active appointment with this doctor on that day, the most one "
                "patient may hold; cancel it or choose another day.",
                "You already have %(limit)d active appointments with this doctor on that day, the most one "
                "patient may hold; cancel one or choose another day.",
                limit,
            )
            % {"limit": limit},
            field="date",
        )
    return (day["last"] or 0) + 1


def _limited(actor, patient) -> int | None:
    """Whose bookings count against the per-day limit: a patient acting for themselves. A doctor or staff
    booking for a patient may exceed it (a double session, a family's visits arranged at the desk)."""
    return patient.pk if actor.pk == patient.pk and not actor.is_admin else None


def _check_bookable_date(date: datetime.date) -> None:
    if date < timezone.localdate():
        raise InvalidInput(gettext("This date is in the past."), field="date")


def check_booking(*, actor, doctor: Doctor, date: datetime.date, patient=None):
    """Who may book what: returns the patient the booking is for, or raises."""
    if actor.role == Role.PATIENT and not actor.is_admin:
        patient = actor
    elif patient is None:
        raise InvalidInput(gettext("Name the patient this appointment is for."), field="patient")
    elif actor.role == Role.DOCTOR and not actor.is_admin and doctor.user_id != actor.pk:
        raise NotAllowed(gettext("A doctor books appointments in their own schedule only."))
    if patient.role != Role.PATIENT:
        raise InvalidInput(gettext("Appointments are booked for patients."), field="patient")
    _check_bookable_date(date)
    return patient


def check_reschedule(*, actor, appointment: Appointment, date: datetime.date, time: datetime.time) -> bool:
    """Who may move an appointment, and whether it can move; raises if not, False when nothing moves."""
    if role_in(appointment, actor) is None:
        raise NotFound(gettext("No such appointment."))
    if not appointment.is_active:
        raise InvalidInput(
            gettext("A %(status)s appointment cannot be rescheduled.") % {"status": appointment.status}, field="status"
        )
    if (date, time) == (appointment.date, appointment.time):
        return False
    _check_bookable_date(date)
    return True


def check_slot_free(*, doctor_id: int, date: datetime.date, time: datetime.time, exclude_id: int | None = None) -> None:
    """Raise Conflict when a non-cancelled appointment holds the slot (callers hold the doctor lock to be sure)."""
    if _slot_taken(doctor_id=doctor_id, date=date, time=time, exclude_id=exclude_id):
        raise Conflict(gettext("That time is already booked with this doctor."), field="time")


@transaction.atomic
def appointment_book(
    *,
    actor,
    doctor: Doctor | int,
    date: datetime.date,
    time: datetime.time,
    reason: str = "",
    patient=None,
    mode: str = Mode.IN_PERSON,
) -> Appointment:
    """Book a slot: CONFIRMED with the next queue number of the doctor's day, in person or by video (`mode`).

    A patient always books for themselves; a doctor (in their own schedule) or staff name the patient.
    `doctor` is a doctor or its id: the doctor is read afresh under the lock of its row, so concurrent
    bookings get 1, 2, 3 ... and one holder per slot; a deactivated doctor cannot be booked.
    """
    doctor = _lock_bookable_doctor(doctor if isinstance(doctor, int) else doctor.pk)
    patient = check_booking(actor=actor, doctor=doctor, date=date, patient=patient)
    queue_number = _claim_slot(doctor_id=doctor.pk, date=date, time=time, limited_patient_id=_limited(actor, patient))
    try:
        # No savepoint of its own: a failure here fails the whole booking (the Conflict below
        # leaves this function's transaction, which rolls back).
        with transaction.atomic(savepoint=False):
            appointment = Appointment(
                patient=patient,
                doctor=doctor,
                date=date,
                time=time,
                reason=reason,
                status=Status.CONFIRMED,
                queue_number=queue_number,
                mode=mode,
            )
            _save(appointment, actor=actor, force_insert=True)
    except IntegrityError as exc:  # the database's constraint is the last word on the slot
        raise Conflict(gettext("That time is already booked with this doctor."), field="time") from exc

    reminders_plan(appointment=appointment)
    _publish(
        appointment,
        [
            _notification(patient, "confirmed_patient", appointment, NotificationType.APPOINTMENT_CONFIRMED),
            _notification(doctor.user, "booked_doctor", appointment, NotificationType.APPOINTMENT_BOOKED),
        ],
        queue_days=[date],
    )
    return appointment


def _save(appointment: Appointment, *, actor, **kwargs) -> None:
    """Save, naming `actor` in the audit trail's row (None: the system).

    The instance carries it for this save only (django-simple-history reads `_history_user`), so no
    thread-local or middleware decides who did it, and a later save of the same object names nobody.
    """
    appointment._history_user = actor
    try:
        appointment.save(**kwargs)
    finally:
        del appointment._history_user


def _reload(appointment_id: int, *, lock: bool = False) -> Appointment:
    qs = Appointment.objects.select_related("patient", "doctor__user")
    if lock:
        qs = qs.select_for_update(of=("self",))
    return qs.get(pk=appointment_id)


@transaction.atomic
def appointment_transition(*, actor, appointment: Appointment, to_status: str) -> Appointment:
    """Move an appointment's status through the TRANSITIONS guard, with its notifications and events."""
    appointment = _reload(appointment.pk, lock=True)
    check_transition(appointment=appointment, actor=actor, to_status=to_status)

    appointment.status = to_status
    fields = ["status", "updated_at"]
    if to_status == Status.COMPLETED:
        appointment.completed_at = timezone.now()
        fields.append("completed_at")
    _save(appointment, actor=actor, update_fields=fields)

    patient, doctor_user = appointment.patient, appointment.doctor.user
    notifications = []
    if to_status == Status.CONFIRMED:
        notifications.append(
            _notification(patient, "confirmed_patient", appointment, NotificationType.APPOINTMENT_CONFIRMED)
        )
    elif to_status == Status.CANCELLED:
        notifications += [
            _notification(patient, "cancelled_patient", appointment, NotificationType.APPOINTMENT_CANCELLED),
            _notification(doctor_user, "cancelled_doctor", appointment, NotificationType.APPOINTMENT_CANCELLED),
        ]
    elif to_status == Status.COMPLETED:
        notifications.append(_notification(patient, "completed_patient", appointment, NotificationType.REVIEW_REQUEST))
    _publish(appointment, notifications, queue_days=[appointment.date])
    if to_status not in ACTIVE_STATUSES:
        reminders_drop(appointment=appointment)

    if to_status not in ACTIVE_STATUSES and not has_active_appointment(
        patient=patient, doctor_id=appointment.doctor_id
    ):
        outbox.queue_revoke(patient.pk, appointment.doctor_id)
    return appointment


def appointment_cancel(*, actor, appointment: Appointment) -> Appointment:
    """Cancel (the row stays, the slot frees up)."""
    return appointment_transition(actor=actor, appointment=appointment, to_status=Status.CANCELLED)


@transaction.atomic
def appointment_reschedule(
    *, actor, appointment: Appointment, date: datetime.date | None = None, time: datetime.time | None = None
) -> Appointment:
    """Move an active appointment to another date and/or time.

    Its patient, its doctor or staff may; the queue number stays on the same day and is the next
    number of the new day otherwise. Locks the doctor's row like a booking.
    """
    # The doctor never changes, so the caller's copy says whose lock to take; the state is read under it.
    if role_in(appointment, actor) is None:
        raise NotFound(gettext("No such appointment."))
    _lock_doctor(appointment.doctor_id)
    appointment = _reload(appointment.pk, lock=True)
    date = date or appointment.date
    time = time or appointment.time
    if not check_reschedule(actor=actor, appointment=appointment, date=date, time=time):
        return appointment
    next_number = _claim_slot(
        doctor_id=appointment.doctor_id,
        date=date,
        time=time,
        exclude_id=appointment.pk,
        limited_patient_id=_limited(actor, appointment.patient),
    )
    moved_from = appointment.date
    if date != appointment.date:
        appointment.queue_number = next_number
    appointment.date, appointment.time = date, time
    try:
        with transaction.atomic(savepoint=False):  # as in appointment_book
            _save(appointment, actor=actor, update_fields=["date", "time", "queue_number", "updated_at"])
    except IntegrityError as exc:
        raise Conflict(gettext("That time is already booked with this doctor."), field="time") from exc

    reminders_plan(appointment=appointment, replan=True)
    kind = NotificationType.APPOINTMENT_RESCHEDULED
    _publish(
        appointment,
        [
            _notification(appointment.patient, "rescheduled_patient", appointment, kind),
            _notification(appointment.doctor.user, "rescheduled_doctor", appointment, kind),
        ],
        queue_days=[moved_from, date],  # the day it left and the day it moved to
    )
    return appointment


@transaction.atomic
def appointment_set_reason(*, actor, appointment: Appointment, reason: str) -> Appointment:
    """Change the reason for the visit; its patient and doctor get `appointment_updated`.

    Whoever may see the appointment may (the admin's change form calls it; the REST API does not
    offer it). No notification: the reason is health detail, never put in notification text.
    """
    if role_in(appointment, actor) is None:
        raise NotFound(gettext("No such appointment."))
    appointment = _reload(appointment.pk, lock=True)
    if appointment.reason == reason:
        return appointment
    appointment.reason = reason
    _save(appointment, actor=actor, update_fields=["reason", "updated_at"])
    _publish(appointment, [])
    return appointment


@transaction.atomic
def appointment_set_mode(*, actor, appointment: Appointment, mode: str) -> Appointment:
    """Make a visit in person or by video; its patient and doctor get `appointment_updated`.

    Its patient, its doctor or staff may, while it is PENDING or CONFIRMED (later: Conflict).
    No notification: both see the change on the appointment itself.
    """
    if role_in(appointment, actor) is None:
        raise NotFound(gettext("No such appointment."))
    if mode not in Mode.values:
        raise InvalidInput(gettext("Choose IN_PERSON or VIDEO."), field="mode")
    appointment = _reload(appointment.pk, lock=True)
    if not appointment.is_active:
        raise Conflict(
            gettext("A %(status)s appointment's mode cannot change.") % {"status": appointment.status}, field="mode"
        )
    if appointment.mode == mode:
        return appointment
    appointment.mode = mode
    _save(appointment, actor=actor, update_fields=["mode", "updated_at"])
    _publish(appointment, [])
    return appointment


def appointment_change(
    *,
    actor,
    appointment: Appointment,
    status: str | None = None,
    date: datetime.date | None = None,
    time: datetime.time | None = None,
    mode: str | None = None,
) -> Appointment:
    """A PATCH: change the mode, reschedule and/or move the status, all or nothing.

    Each service is a transaction of its own; only a PATCH that does more than one needs one around them.
    The mode changes first: a PATCH that also ends the appointment may still set it.
    """
    moves = date is not None or time is not None
    several = sum((moves, status is not None, mode is not None)) > 1
    with transaction.atomic() if several else nullcontext():
        if mode is not None:
            appointment = appointment_set_mode(actor=actor, appointment=appointment, mode=mode)
        if moves:
            appointment = appointment_reschedule(actor=actor, appointment=appointment, date=date, time=time)
        if status is not None:
            appointment = appointment_transition(actor=actor, appointment=appointment, to_status=status)
    return appointment


REASON = "reason"


# savepoint=False: these run inside the API's transaction around the whole booking, whose rollback
# (a refused booking) takes the claimed key with it; a savepoint of their own would only cost queries.
@transaction.atomic(savepoint=False)
def idempotency_record_claim(*, user, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Claim `key` for `user`'s request with this fingerprint: (record, True) when new, (the earlier
    record, False) for a repeat. The same key for another request is an InvalidInput on idempotency_key.

    Callers hold a transaction around the claim, the booking and `idempotency_record_complete`.
    """
    # INSERT first: the first request (the usual case) needs no SELECT. A racing twin blocks on the
    # key's unique index here until the first one commits, then reads it.
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(user=user, key=key, fingerprint=fingerprint), True
    except IntegrityError:
        record = IdempotencyRecord.objects.get(user=user, key=key)
    if record.fingerprint != fingerprint:
        raise InvalidInput(gettext("This key was used for a different request."), field="idempotency_key")
    return record, False


@transaction.atomic(savepoint=False)
def idempotency_record_complete(*, record: IdempotencyRecord, status: int, body) -> IdempotencyRecord:
    """Keep the first response to the claimed request, with a booking's reason (health detail) left out.

    The record lives for IDEMPOTENCY_RETENTION_HOURS (then `manage.py prune`); the reason stays with
    the appointment only, where its audit trail and access rules are. A replay takes it from the repeat.
    """
    if status == 201 and isinstance(body, dict) and REASON in body:
        body = {**body, REASON: None}
    record.response_status, record.response_body = status, body
    record.save(update_fields=["response_status", "response_body"])
    return record


def idempotency_records_prune(*, before: datetime.datetime) -> int:
    """Delete idempotency records made before `before` (retention: `manage.py prune`); returns how many.

    A repeat of such a request after that books again: clients retry within seconds, not days.
    """
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=before).delete()
    return deleted
