"""The recording side of the event stream: numbers reserved per user, rows written in bulk."""

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.models.signals import post_save

from accounts.tests.factories import UserFactory
from core import wire
from notifications import replay, stream
from notifications.models import Event, EventSequence

pytestmark = pytest.mark.django_db


@pytest.fixture
def saved_events():
    """Every post_save sent for an Event, as (seq, user_id, the signal's keyword arguments)."""
    seen = []

    def receiver(sender, instance, **kwargs):
        kwargs.pop("signal")
        seen.append((instance.user_id, instance.seq, instance.pk is not None, kwargs))

    post_save.connect(receiver, sender=Event, dispatch_uid="test_stream_saved_events")
    yield seen
    post_save.disconnect(sender=Event, dispatch_uid="test_stream_saved_events")


def seqs(user) -> list[int]:
    return list(Event.objects.filter(user=user).order_by("seq").values_list("seq", flat=True))


def test_numbers_count_per_user_in_the_order_given(patient, patient2):
    assert replay.last_seq(patient.pk) is None

    with transaction.atomic():
        first = stream.record_many(
            [(patient.pk, "new_notification", {"n": 1}), (patient2.pk, "new_notification", {}), (patient.pk, "x", {})]
        )
    with transaction.atomic():
        stream.record_many([(patient2.pk, "appointment_updated", {}), (patient.pk, "all_notifications_read", {})])

    assert [(e.user_id, e.seq) for e in first] == [(patient.pk, 1), (patient2.pk, 1), (patient.pk, 2)]
    assert all(e.pk for e in first)
    assert seqs(patient) == [1, 2, 3] and seqs(patient2) == [1, 2]
    assert Event.objects.get(user=patient, seq=1).data == {"n": 1}
    assert (replay.last_seq(patient.pk), replay.last_seq(patient2.pk)) == (3, 2)


def test_post_save_is_sent_for_each_event_as_save_would(patient, patient2, saved_events):
    with transaction.atomic():
        stream.record_many([(patient2.pk, "a", {}), (patient.pk, "b", {}), (patient2.pk, "c", {})])

    expected = {"created": True, "raw": False, "using": "default", "update_fields": None}
    assert saved_events == [
        (patient2.pk, 1, True, expected),
        (patient.pk, 1, True, expected),
        (patient2.pk, 2, True, expected),
    ]


def test_a_rolled_back_change_gives_its_numbers_back(patient):
    with transaction.atomic():
        stream.record_many([(patient.pk, "a", {})])
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        stream.record_many([(patient.pk, "b", {}), (patient.pk, "c", {})])
        1 / 0  # noqa: B018
    with transaction.atomic():
        stream.record_many([(patient.pk, "d", {})])

    assert list(Event.objects.filter(user=patient).order_by("seq").values_list("seq", "type")) == [(1, "a"), (2, "d")]
    assert replay.last_seq(patient.pk) == 2


def test_reserving_for_many_users_is_one_statement_and_one_insert(django_assert_num_queries):
    users = UserFactory.create_batch(5)
    with transaction.atomic(), django_assert_num_queries(2):
        stream.record_many([(u.pk, "a", {}) for u in reversed(users)] + [(users[0].pk, "b", {})])
    assert seqs(users[0]) == [1, 2]


def test_nothing_to_record_costs_nothing(django_assert_num_queries):
    with transaction.atomic(), django_assert_num_queries(0):
        assert stream.record_many([]) == []


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused(patient):
    with pytest.raises(RuntimeError):
        stream.record_many([(patient.pk, "a", {})])
    assert not Event.objects.exists()


def test_the_migration_starts_each_sequence_at_the_stored_streams_newest(patient, patient2):
    Event.objects.bulk_create(
        [Event(user=patient, seq=n, type="a", data={}) for n in (1, 2, 7)]
        + [Event(user=patient2, seq=1, type="a", data={})]
    )
    EventSequence.objects.all().delete()
    migration = importlib.import_module("notifications.migrations.0002_event_sequence")

    migration.fill_from_events(apps, SimpleNamespace(connection=connection))

    assert dict(EventSequence.objects.values_list("user_id", "last_seq")) == {patient.pk: 7, patient2.pk: 1}
    with transaction.atomic():
        (event,) = stream.record_many([(patient.pk, "b", {})])
    assert event.seq == 8


def test_frames_are_utf8_text_and_a_lone_surrogate_is_escaped_not_fatal():
    text = wire.frame("new_notification", {"title": "সময় নিশ্চিত 😀"}, id_=3)
    assert text == '{"type":"new_notification","data":{"title":"সময় নিশ্চিত 😀"},"id":3}'
    assert len(wire.frame("x", {"t": "😀"}).encode()) == len('{"type":"x","data":{"t":""}}') + 4  # not 12
    broken = wire.frame("x", {"title": "a\ud800b"})  # cannot be UTF-8: sent escaped instead
    assert broken.encode() and "\\ud800" in broken


def test_a_resume_is_replayable_only_from_the_next_kept_event(patient, settings):
    import datetime

    from django.utils import timezone

    with transaction.atomic():
        stream.record_many([(patient.pk, "a", {}) for _ in range(4)])
    assert replay.replayable(replay.replay_page(patient.pk, 1, 4), 1)
    assert [e.seq for e in replay.replay_page(patient.pk, 0, 4, size=2)] == [1, 2]

    Event.objects.filter(user=patient, seq=2).delete()  # pruned
    assert not replay.replayable(replay.replay_page(patient.pk, 1, 4), 1)
    assert replay.replayable(replay.replay_page(patient.pk, 2, 4), 2)
    assert not replay.replayable([], 4)

    settings.EVENT_RETENTION_DAYS = 7
    Event.objects.filter(user=patient, seq=3).update(created_at=timezone.now() - datetime.timedelta(days=8))
    assert not replay.replayable(replay.replay_page(patient.pk, 2, 4), 2)
    assert replay.replayable(replay.replay_page(patient.pk, 3, 4), 3)
