"""The push after commit: one message per user per transaction, and nothing for what rolled back."""

import datetime
import json
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from core import groups, outbox
from notifications import stream
from notifications.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def sent(deliver) -> list[tuple[str, dict]]:
    return [message for call in deliver.call_args_list for message in call.args[0]]


def test_a_booking_sends_each_user_one_message_with_all_their_events_in_order(book, patient, doctor):
    with mock.patch("core.outbox._deliver") as deliver:
        appointment = book(patient=patient, doctor=doctor)

    assert deliver.call_count == 1  # one hop to the layer for the whole transaction
    messages = dict(sent(deliver))
    for user in (patient, doctor.user):
        message = messages[groups.user_group(user.pk)]
        stored = list(Event.objects.filter(user=user).order_by("seq"))
        assert message["type"] == groups.EVENT_PUSH and message["group"] == groups.user_group(user.pk)
        assert [seq for seq, _frame in message["events"]] == [e.seq for e in stored]
        frames = [json.loads(frame) for _seq, frame in message["events"]]
        assert frames == [{"type": e.type, "data": e.data, "id": e.seq} for e in stored]
    assert f'"id":{appointment.pk}' in messages[groups.user_group(patient.pk)]["events"][-1][1]


def test_events_of_a_rolled_back_savepoint_are_never_pushed(patient):
    with mock.patch("core.outbox._deliver") as deliver:
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

    def read():
        reads.append(doctor.pk)
        return {"current_queue": len(reads)}

    today = timezone.localdate()
    with mock.patch("core.outbox._deliver") as deliver:
        with transaction.atomic():
            outbox.queue_changed(doctor.pk, today, read=read)
            outbox.queue_changed(doctor.pk, today - datetime.timedelta(days=1), today, read=read)
            outbox.queue_changed(doctor.pk, today + datetime.timedelta(days=1), read=read)  # not today's queue
            assert reads == []  # nothing read before the commit
        assert reads == [doctor.pk]

    queue_messages = [m for group, m in sent(deliver) if group == groups.queue_group(doctor.pk)]
    assert [m["frame"] for m in queue_messages] == ['{"type":"queue_updated","data":{"current_queue":1}}']
    assert queue_messages[0]["queue"] == {"current_queue": 1}


def test_a_queue_changed_by_a_caller_that_cannot_read_it_is_read_by_the_hubs(doctor):
    """An appointment's change (below queues/) sends the doctor's id; a reader given in the same
    transaction (a queue service's) makes it a ready frame instead."""
    today = timezone.localdate()
    with mock.patch("core.outbox._deliver") as deliver:
        with transaction.atomic():
            outbox.queue_changed(doctor.pk, today)
        with transaction.atomic():
            outbox.queue_changed(doctor.pk, today)
            outbox.queue_changed(doctor.pk, today, read=lambda: {"current_queue": 4})
            outbox.queue_changed(doctor.pk, today)

    first, second = [m for group, m in sent(deliver) if group == groups.queue_group(doctor.pk)]
    assert first == {"type": groups.QUEUE_CHANGED, "doctor_id": doctor.pk, "group": groups.queue_group(doctor.pk)}
    assert second["type"] == groups.QUEUE_PUSH and second["queue"] == {"current_queue": 4}


def test_a_queue_that_cannot_be_read_at_commit_costs_its_push_only(doctor):
    def fail():
        raise RuntimeError("the database went away after the commit")

    with mock.patch("core.outbox._deliver") as deliver:
        with transaction.atomic():
            stream.record_many([(doctor.user_id, "all_notifications_read", {})])
            outbox.queue_changed(doctor.pk, timezone.localdate(), read=fail)

    assert [group for group, _m in sent(deliver)] == [groups.user_group(doctor.user_id)]


def test_the_pushes_that_outlive_a_rolled_back_savepoint_still_go_in_one_message_per_user(patient, doctor):
    """The last push asked for was rolled back: the ones before it are still sent, together."""
    with mock.patch("core.outbox._deliver") as deliver:
        with transaction.atomic():
            stream.record_many([(patient.pk, "all_notifications_read", {})])
            outbox.close_user_sockets(doctor.user_id)
            stream.record_many([(patient.pk, "notification_read", {"notification_id": 1})])
            try:
                with transaction.atomic():
                    stream.record_many([(patient.pk, "all_notifications_read", {"lost": True})])
                    outbox.queue_revoke(patient.pk, doctor.pk)
                    raise RuntimeError("the inner change fails")
            except RuntimeError:
                pass

    assert deliver.call_count == 1
    messages = sent(deliver)
    assert [group for group, _m in messages] == [groups.user_group(patient.pk), groups.user_group(doctor.user_id)]
    assert [seq for seq, _frame in messages[0][1]["events"]] == [1, 2]
    assert messages[1][1]["type"] == groups.SOCKETS_CLOSE


def test_a_transaction_rolled_back_whole_leaves_nothing_for_the_next_one(patient):
    with mock.patch("core.outbox._deliver") as deliver:
        with transaction.atomic():
            stream.record_many([(patient.pk, "all_notifications_read", {"lost": True})])
            transaction.set_rollback(True)
        with transaction.atomic():
            stream.record_many([(patient.pk, "notification_read", {"notification_id": 1})])

    assert deliver.call_count == 1
    [(_group, message)] = sent(deliver)
    assert [json.loads(frame)["type"] for _seq, frame in message["events"]] == ["notification_read"]


def test_a_push_outside_a_transaction_goes_at_once(patient):
    with mock.patch("core.outbox._deliver") as deliver:
        outbox.close_user_sockets(patient.pk)
        assert [group for group, _m in sent(deliver)] == [groups.user_group(patient.pk)]
