"""The push after commit: one message per user per transaction, and nothing for what rolled back."""

import datetime
import json
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from notifications import stream
from notifications.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def sent(deliver) -> list[tuple[str, dict]]:
    return [message for call in deliver.call_args_list for message in call.args[0]]


def test_a_booking_sends_each_user_one_message_with_all_their_events_in_order(book, patient, doctor):
    with mock.patch("notifications.stream._deliver") as deliver:
        appointment = book(patient=patient, doctor=doctor)

    assert deliver.call_count == 1  # one hop to the layer for the whole transaction
    messages = dict(sent(deliver))
    for user in (patient, doctor.user):
        message = messages[stream.user_group(user.pk)]
        stored = list(Event.objects.filter(user=user).order_by("seq"))
        assert message["type"] == stream.EVENT_PUSH and message["group"] == stream.user_group(user.pk)
        assert [seq for seq, _frame in message["events"]] == [e.seq for e in stored]
        frames = [json.loads(frame) for _seq, frame in message["events"]]
        assert frames == [{"type": e.type, "data": e.data, "id": e.seq} for e in stored]
    assert f'"id":{appointment.pk}' in messages[stream.user_group(patient.pk)]["events"][-1][1]


def test_events_of_a_rolled_back_savepoint_are_never_pushed(patient):
    with mock.patch("notifications.stream._deliver") as deliver:
        with transaction.atomic():
            stream.record_many([(patient.pk, "all_notifications_read", {})])
            try:
                with transaction.atomic():
                    stream.record_many([(patient.pk, "all_notifications_read", {"lost": True})])
                    raise RuntimeError("the inner change fails")
            except RuntimeError:
                pass
        with transaction.atomic():
            stream.record_many([(patient.pk, "notification_read", {"notification_id": 1})])
            transaction.set_rollback(True)

    pushed = [seq for _group, message in sent(deliver) for seq, _frame in message["events"]]
    assert pushed == list(Event.objects.filter(user=patient).values_list("seq", flat=True)) == [1]


def test_a_queue_changed_twice_in_one_transaction_is_pushed_once_as_it_stands_at_commit(doctor):
    reads = []
    with (
        mock.patch("notifications.stream._deliver") as deliver,
        mock.patch(
            "notifications.stream._read_queue",
            lambda doctor_id: reads.append(doctor_id) or {"current_queue": len(reads)},
        ),
    ):
        with transaction.atomic():
            stream.queue_changed(doctor.pk, timezone.localdate())
            stream.queue_changed(doctor.pk, timezone.localdate() - datetime.timedelta(days=1), timezone.localdate())
            stream.queue_changed(doctor.pk, timezone.localdate() + datetime.timedelta(days=1))  # not today's queue
            assert reads == []  # nothing read before the commit
        assert reads == [doctor.pk]

    queue_messages = [m for group, m in sent(deliver) if group == stream.queue_group(doctor.pk)]
    assert [m["frame"] for m in queue_messages] == ['{"type":"queue_updated","data":{"current_queue":1}}']


def test_a_queue_that_cannot_be_read_at_commit_costs_its_push_only(doctor):
    def fail(doctor_id):
        raise RuntimeError("the database went away after the commit")

    with mock.patch("notifications.stream._deliver") as deliver, mock.patch("notifications.stream._read_queue", fail):
        with transaction.atomic():
            stream.record_many([(doctor.user_id, "all_notifications_read", {})])
            stream.queue_changed(doctor.pk, timezone.localdate())

    assert [group for group, _m in sent(deliver)] == [stream.user_group(doctor.user_id)]
