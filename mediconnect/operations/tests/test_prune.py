"""`manage.py prune`: what is past its retention goes, the rest stays, and a second run removes nothing."""

import datetime
import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from appointments.models import Appointment, IdempotencyRecord
from appointments.reminders import send_due_reminders
from notifications import stream
from notifications.delivery import send_due_deliveries
from notifications.models import Event

pytestmark = pytest.mark.django_db


def prune() -> str:
    out = io.StringIO()
    call_command("prune", stdout=out)
    return out.getvalue().strip()


def age(queryset, **delta) -> None:
    queryset.update(created_at=timezone.now() - datetime.timedelta(**delta))


def test_prune_removes_only_what_is_past_its_retention(settings, book, patient, doctor):
    settings.EVENT_RETENTION_DAYS, settings.IDEMPOTENCY_RETENTION_HOURS = 7, 24
    settings.REMINDER_OFFSETS = [3600]
    appointment = book(patient=patient, doctor=doctor)  # two events for each of them
    waiting = send_due_reminders.using(run_after=timezone.now() + datetime.timedelta(hours=1)).enqueue()
    two_days_ago = timezone.now() - datetime.timedelta(days=2)
    done_long_ago, done_now, left_running = (send_due_deliveries.enqueue().id for _ in range(3))
    DBTaskResult.objects.filter(pk=done_long_ago).update(status="SUCCESSFUL", finished_at=two_days_ago)
    DBTaskResult.objects.filter(pk=done_now).update(status="SUCCESSFUL", finished_at=timezone.now())
    DBTaskResult.objects.filter(pk=left_running).update(status="RUNNING", started_at=two_days_ago)
    age(Event.objects.filter(user=patient), days=8)
    age(Event.objects.filter(user=doctor.user), days=6)
    old_key = IdempotencyRecord.objects.create(user=patient, key="old", fingerprint="f", response_status=201)
    new_key = IdempotencyRecord.objects.create(user=patient, key="new", fingerprint="f", response_status=201)
    age(IdempotencyRecord.objects.filter(pk=old_key.pk), hours=25)
    age(IdempotencyRecord.objects.filter(pk=new_key.pk), hours=23)
    expired, blacklisted, valid = (RefreshToken.for_user(patient) for _ in range(3))
    blacklisted.blacklist()
    OutstandingToken.objects.filter(jti__in=[expired["jti"], blacklisted["jti"]]).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )

    report = prune().splitlines()[0]

    assert report == (
        "prune: 2 event(s) older than 7 day(s), 1 idempotency record(s) older than 24 hour(s), "
        "2 expired refresh token(s) (1 of them blacklisted), 2 task row(s) ended over a day ago removed."
    )
    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == {uuid.UUID(waiting.id), uuid.UUID(done_now)}
    assert not Event.objects.filter(user=patient).exists()
    assert Event.objects.filter(user=doctor.user).count() == 2
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == [valid["jti"]]
    assert not BlacklistedToken.objects.exists()
    # The appointment and its audit trail are not the stream's: they stay.
    assert Appointment.objects.get(pk=appointment.pk).history.count() == 1

    # Idempotent: nothing more to remove.
    assert prune().startswith("prune: 0 event(s)")
    assert "0 idempotency record(s)" in prune() and "0 expired refresh token(s)" in prune()


def test_a_pruned_stream_goes_on_counting_where_it_was(settings, book, patient, doctor):
    book(patient=patient, doctor=doctor)
    age(Event.objects.all(), days=settings.EVENT_RETENTION_DAYS + 1)
    prune()

    with transaction.atomic():
        stream.record_many([(patient.pk, "all_notifications_read", {"unread_count": 0})])

    assert list(Event.objects.filter(user=patient).values_list("seq", flat=True)) == [3]


def test_the_defaults_are_thirty_days_and_a_day(book, patient, doctor):
    book(patient=patient, doctor=doctor)
    age(Event.objects.filter(user=patient), days=29)
    assert prune().startswith("prune: 0 event(s) older than 30 day(s), 0 idempotency record(s) older than 24 hour(s)")
    age(Event.objects.filter(user=patient), days=31)
    assert prune().startswith("prune: 2 event(s) older than 30 day(s)")


def test_a_retention_below_one_is_refused(settings, book, patient, doctor):
    book(patient=patient, doctor=doctor)
    settings.EVENT_RETENTION_DAYS = 0
    with pytest.raises(CommandError):
        prune()
    assert Event.objects.count() == 4


def test_web_push_messages_sent_or_given_up_go_with_the_events(settings, patient):
    from notifications.models import Notification, PushMessage, PushSubscription

    settings.EVENT_RETENTION_DAYS = 7
    subscription = PushSubscription.objects.create(
        user=patient, endpoint="https://push.example.net/1", p256dh="x", auth="y"
    )
    long_ago = timezone.now() - datetime.timedelta(days=8)
    states = ["SENT", "FAILED", "PENDING"]
    for state in states:
        notification = Notification.objects.create(user=patient, type="APPOINTMENT_REMINDER", title="t", message="m")
        PushMessage.objects.create(notification=notification, subscription=subscription, state=state, due_at=long_ago)
    recent = Notification.objects.create(user=patient, type="APPOINTMENT_REMINDER", title="t", message="m")
    PushMessage.objects.create(notification=recent, subscription=subscription, state="SENT", due_at=timezone.now())

    assert "prune: 2 Web Push message(s) sent or given up over 7 day(s) ago removed." in prune().splitlines()
    assert sorted(PushMessage.objects.values_list("state", flat=True)) == ["PENDING", "SENT"]
