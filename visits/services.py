"""Every write of the video visits: the ring and the call log. The REST API calls these."""

import datetime
import math

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Role
from core.errors import InvalidInput, NotAllowed, TooSoon
from core.metrics import CALLS_CONNECTED, CALLS_FAILED, CALLS_STARTED
from notifications.services import notifications_create

from .models import CallEvent, CallLog, Route
from .selectors import call_open_to
from .texts import ring_notification

RING_PAUSE = datetime.timedelta(seconds=30)


def _locked_log(appointment_id: int) -> CallLog:
    """The appointment's call log, made on first use, its row locked until the transaction ends."""
    log, _ = CallLog.objects.get_or_create(appointment_id=appointment_id)
    return CallLog.objects.select_for_update().get(pk=log.pk)


@transaction.atomic
def call_ring(*, actor, appointment_id: int, now: datetime.datetime | None = None) -> CallLog:
    """The doctor rings the patient: a VIDEO_CALL notification (by SMS too when they are offline).

    Under the rules of `GET …/call/`, by its doctor only; again within RING_PAUSE is TooSoon. The pause
    is kept in the call log's row (locked here), so it holds across server processes.
    """
    now = now or timezone.now()
    access = call_open_to(actor, appointment_id, now=now)
    if access.role != Role.DOCTOR:
        raise NotAllowed(gettext("Only the doctor rings for a video visit."))
    log = _locked_log(appointment_id)
    if log.rung_at is not None and now < log.rung_at + RING_PAUSE:
        wait = math.ceil((log.rung_at + RING_PAUSE - now).total_seconds())
        raise TooSoon(gettext("The patient was rung moments ago; try again shortly."), retry_after=max(1, wait))
    log.rung_at = now
    log.save(update_fields=["rung_at"])
    appointment = access.appointment
    notifications_create(
        notifications=[
            ring_notification(
                patient=appointment.patient, doctor_name=appointment.doctor.user.name, appointment_id=appointment.pk
            )
        ]
    )
    return log


def _other_is_in(log: CallLog, user_id: int) -> bool:
    """Whether the other participant joined the current call and has not left it."""
    last = (
        CallEvent.objects.filter(log=log, at__gte=log.started_at)
        .exclude(user_id=user_id)
        .filter(event__in=[CallEvent.Kind.JOIN, CallEvent.Kind.LEAVE])
        .order_by("-at", "-id")
        .values_list("event", flat=True)
        .first()
    )
    return last == CallEvent.Kind.JOIN


@transaction.atomic
def call_event_record(
    *, actor, appointment_id: int, event: str, route: str = "", now: datetime.datetime | None = None
) -> CallEvent:
    """Log what a participant's visit page saw: `join`, `connected` (with its `route`), `failed`, `leave`.

    Under the rules of `GET …/call/`. A join when nobody is in starts a call; its first `connected`
    connects it, a `failed` before that fails it; it ends when both have left. The calls_* counters of
    /metrics count once per call, after commit.
    """
    if event not in CallEvent.Kind.values:
        raise InvalidInput(gettext("Choose join, connected, failed or leave."), field="event")
    if route and route not in Route.values:
        raise InvalidInput(gettext("Choose relay or direct."), field="route")
    now = now or timezone.now()
    call_open_to(actor, appointment_id, now=now)
    log = _locked_log(appointment_id)
    counted = None
    fields = []
    in_call = log.started_at is not None and log.ended_at is None
    if event == CallEvent.Kind.JOIN and not in_call:
        log.calls += 1
        log.started_at, log.connected_at, log.ended_at, log.route, log.failed = now, None, None, "", False
        fields = ["calls", "started_at", "connected_at", "ended_at", "route", "failed"]
        counted = CALLS_STARTED
    elif event == CallEvent.Kind.CONNECTED and in_call and log.connected_at is None:
        log.connected_at, log.route, log.failed = now, route, False
        fields = ["connected_at", "route", "failed"]
        counted = CALLS_CONNECTED
    elif event == CallEvent.Kind.FAILED and in_call and log.connected_at is None and not log.failed:
        log.failed = True
        fields = ["failed"]
        counted = CALLS_FAILED
    elif event == CallEvent.Kind.LEAVE and in_call and not _other_is_in(log, actor.pk):
        log.ended_at = now
        fields = ["ended_at"]
    if fields:
        log.save(update_fields=fields)
    recorded = CallEvent.objects.create(log=log, user=actor, event=event, route=route, at=now)
    if counted is not None:
        transaction.on_commit(counted.inc)
    return recorded
