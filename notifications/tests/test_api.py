"""The notification inbox over REST: the caller's own, newest first, and marking read."""

import pytest

from notifications.models import Event, Notification

pytestmark = pytest.mark.django_db


OBJECT_KEYS = {"id", "type", "title", "message", "related_id", "related_type", "is_read", "created_at"}


@pytest.fixture
def inbox(book, patient, patient2, doctor):
    """Two bookings of `patient` and one of `patient2`: each patient gets one notification per booking."""
    book(patient=patient, doctor=doctor, time="09:00")
    book(patient=patient2, doctor=doctor, time="09:30")
    book(patient=patient, doctor=doctor, time="10:00")
    return list(Notification.objects.filter(user=patient).order_by("id"))


def test_list_is_the_callers_own_newest_first(api, inbox, patient):
    response = api(patient).get("/api/notifications/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert [n["id"] for n in body["results"]] == [inbox[1].pk, inbox[0].pk]
    first = body["results"][0]
    assert set(first) == OBJECT_KEYS
    assert (first["type"], first["title"], first["related_type"], first["is_read"]) == (
        "APPOINTMENT_CONFIRMED",
        "Appointment Confirmed",
        "Appointment",
        False,
    )


def test_a_doctor_sees_the_bookings_of_their_day(api, inbox, doctor):
    body = api(doctor).get("/api/notifications/").json()
    assert body["count"] == 3
    assert {n["type"] for n in body["results"]} == {"APPOINTMENT_BOOKED"}


def test_unread_filter_and_count(api, inbox, patient, patient2):
    client = api(patient)
    assert client.get("/api/notifications/unread-count/").json() == {"count": 2}
    client.post(f"/api/notifications/{inbox[0].pk}/read/")

    unread = client.get("/api/notifications/", {"unread": "true"}).json()
    assert [n["id"] for n in unread["results"]] == [inbox[1].pk]
    assert client.get("/api/notifications/unread-count/").json() == {"count": 1}
    assert client.get("/api/notifications/").json()["count"] == 2
    assert api(patient2).get("/api/notifications/unread-count/").json() == {"count": 1}


def test_read_marks_one_and_tells_the_owners_sockets(api, inbox, patient):
    response = api(patient).post(f"/api/notifications/{inbox[0].pk}/read/")

    assert response.status_code == 200
    assert set(response.json()) == OBJECT_KEYS
    assert (response.json()["id"], response.json()["is_read"]) == (inbox[0].pk, True)
    assert Notification.objects.get(pk=inbox[0].pk).is_read
    assert not Notification.objects.get(pk=inbox[1].pk).is_read
    last = Event.objects.filter(user=patient).order_by("seq").last()
    assert (last.type, last.data) == ("notification_read", {"notification_id": inbox[0].pk, "unread_count": 1})
    # Reading it again is harmless.
    assert api(patient).post(f"/api/notifications/{inbox[0].pk}/read/").json()["is_read"] is True


@pytest.mark.parametrize("target", ["someone_elses", "unknown", "abc"])
def test_read_of_a_notification_that_is_not_yours_is_404(api, inbox, patient2, target):
    mine = Notification.objects.filter(user=patient2).first()
    other = inbox[0]
    path_id = {"someone_elses": other.pk, "unknown": 999999, "abc": "abc"}[target]

    response = api(patient2).post(f"/api/notifications/{path_id}/read/")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}  # JSON for an id that is not a number too
    assert not Notification.objects.get(pk=other.pk).is_read
    assert not Notification.objects.get(pk=mine.pk).is_read


def test_read_all_marks_only_the_callers_and_counts_them(api, inbox, patient, patient2, doctor):
    client = api(patient)

    response = client.post("/api/notifications/read-all/")

    assert response.status_code == 200
    assert response.json() == {"updated": 2}
    assert not Notification.objects.filter(user=patient, is_read=False).exists()
    assert Notification.objects.filter(user=patient2, is_read=False).count() == 1
    assert Notification.objects.filter(user=doctor.user, is_read=False).count() == 3
    assert Event.objects.filter(user=patient).order_by("seq").last().type == "all_notifications_read"
    assert client.post("/api/notifications/read-all/").json() == {"updated": 0}


def test_the_inbox_is_read_only_otherwise(api, inbox, patient):
    client = api(patient)
    assert client.post("/api/notifications/", {"title": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/notifications/{inbox[0].pk}/").status_code in (404, 405)
    assert Notification.objects.filter(user=patient).count() == 2


def test_notification_events_carry_the_unread_count_after_each_change(api, inbox, book, patient, doctor):
    def stream_of(user):
        return [(e.type, e.data.get("unread_count")) for e in Event.objects.filter(user=user).order_by("seq")]

    # Two bookings: each new_notification says how many are unread with it (appointment_updated has none).
    assert stream_of(patient) == [
        ("new_notification", 1),
        ("appointment_updated", None),
        ("new_notification", 2),
        ("appointment_updated", None),
    ]
    assert [n for t, n in stream_of(doctor.user) if t == "new_notification"] == [1, 2, 3]
    first = Event.objects.filter(user=patient, type="new_notification").order_by("seq").first()
    assert set(first.data) == OBJECT_KEYS | {"unread_count"}

    client = api(patient)
    client.post(f"/api/notifications/{inbox[1].pk}/read/")
    client.post("/api/notifications/read-all/")
    book(patient=patient, doctor=doctor, time="11:00", actor=doctor)  # a third that day: beyond a patient's own limit

    assert stream_of(patient)[4:] == [
        ("notification_read", 1),
        ("all_notifications_read", 0),
        ("new_notification", 1),
        ("appointment_updated", None),
    ]
    assert client.get("/api/notifications/unread-count/").json() == {"count": 1}
