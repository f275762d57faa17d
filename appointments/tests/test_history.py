"""The audit trail: every change of an appointment, who made it and what it changed, over REST and in the admin."""

import datetime
import logging

import pytest

from appointments.models import Appointment, Status
from appointments.services import appointment_transition
from notifications.models import Event, Notification

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/appointments/appointment/"


@pytest.fixture
def as_(request, api):
    return lambda name: api(request.getfixturevalue(name))


def history(client, appointment):
    response = client.get(f"/api/appointments/{appointment.pk}/history/")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_booking_is_the_first_entry_each_field_from_null(as_, patient, doctor, tomorrow):
    client = as_("patient")
    booked = client.post(
        "/api/appointments/",
        {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:30", "reason": "cough"},
        format="json",
    ).json()

    entries = history(client, Appointment.objects.get(pk=booked["id"]))

    assert len(entries) == 1
    (entry,) = entries
    assert set(entry) == {"at", "actor", "actor_name", "changes"}
    assert (entry["actor"], entry["actor_name"]) == (patient.pk, "Pat Patient")
    assert entry["changes"] == {
        "patient": [None, patient.pk],
        "doctor": [None, doctor.pk],
        "date": [None, tomorrow.isoformat()],
        "time": [None, "09:30"],
        "status": [None, "CONFIRMED"],
        "queue_number": [None, 1],
        "mode": [None, "IN_PERSON"],
        "reason": [None, "cough"],
    }
    # `at` is written like the appointment's own times: ISO 8601 in the clinic's time zone.
    at = datetime.datetime.fromisoformat(entry["at"])
    created = datetime.datetime.fromisoformat(booked["created_at"])
    assert at.utcoffset() == created.utcoffset()
    assert created <= at < created + datetime.timedelta(minutes=1)


def test_every_change_oldest_first_with_who_made_it(as_, book, patient, doctor, admin_user, tomorrow):
    appointment = book(patient=patient, doctor=doctor, time="09:00")
    as_("doctor").patch(f"/api/appointments/{appointment.pk}/", {"time": "11:00"}, format="json")
    as_("admin_user").patch(
        f"/api/appointments/{appointment.pk}/",
        {"date": (tomorrow + datetime.timedelta(days=1)).isoformat()},
        format="json",
    )
    as_("patient").delete(f"/api/appointments/{appointment.pk}/")

    entries = history(as_("patient"), appointment)

    assert [(e["actor"], e["actor_name"]) for e in entries] == [
        (patient.pk, "Pat Patient"),
        (doctor.user.pk, "Dr. Doc"),
        (admin_user.pk, "Boss"),
        (patient.pk, "Pat Patient"),
    ]
    assert [e["changes"] for e in entries[1:]] == [
        {"time": ["09:00", "11:00"]},
        # another day: the next number of that day (its first)
        {"date": [tomorrow.isoformat(), (tomorrow + datetime.timedelta(days=1)).isoformat()]},
        {"status": ["CONFIRMED", "CANCELLED"]},
    ]
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)


def test_completing_records_when(as_, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)
    as_("doctor").patch(f"/api/appointments/{appointment.pk}/", {"status": "COMPLETED"}, format="json")

    last = history(as_("doctor"), appointment)[-1]

    assert last["actor"] == doctor.user.pk
    assert set(last["changes"]) == {"status", "completed_at"}
    assert last["changes"]["status"] == ["CONFIRMED", "COMPLETED"]
    old, new = last["changes"]["completed_at"]
    assert old is None and datetime.datetime.fromisoformat(new) <= datetime.datetime.fromisoformat(last["at"])


def test_a_change_nobody_made_has_no_actor(book, patient, doctor, api):
    appointment = book(patient=patient, doctor=doctor)
    # A save outside the services names nobody: the system (a job, a data migration).
    appointment.status = Status.NO_SHOW
    appointment.save()

    last = history(api(patient), appointment)[-1]

    assert (last["actor"], last["actor_name"], last["changes"]) == (None, None, {"status": ["CONFIRMED", "NO_SHOW"]})


@pytest.mark.parametrize(("viewer", "code"), [("patient", 200), ("doctor", 200), ("admin_user", 200)])
def test_those_who_see_the_appointment_see_its_history(as_, book, patient, doctor, viewer, code):
    appointment = book(patient=patient, doctor=doctor)
    assert as_(viewer).get(f"/api/appointments/{appointment.pk}/history/").status_code == code


@pytest.mark.parametrize("viewer", ["patient2", "doctor2"])
def test_anyone_else_gets_404_like_the_detail_route(as_, book, patient, doctor, viewer):
    appointment = book(patient=patient, doctor=doctor)
    client = as_(viewer)
    assert client.get(f"/api/appointments/{appointment.pk}/history/").status_code == 404
    assert client.get(f"/api/appointments/{appointment.pk + 1000}/history/").status_code == 404


def test_history_needs_a_token(client, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)
    assert client.get(f"/api/appointments/{appointment.pk}/history/").status_code == 401


def test_history_is_read_only(as_, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)
    client = as_("admin_user")
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(f"/api/appointments/{appointment.pk}/history/").status_code == 405
    assert len(history(client, appointment)) == 1


def test_the_reason_is_never_logged(as_, book, patient, doctor, caplog):
    caplog.set_level(logging.DEBUG)
    appointment = book(patient=patient, doctor=doctor, reason="private-detail-xyz")
    as_("doctor").patch(f"/api/appointments/{appointment.pk}/", {"status": "CANCELLED"}, format="json")

    assert history(as_("patient"), appointment)[0]["changes"]["reason"] == [None, "private-detail-xyz"]
    # django.db.backends logs SQL only with DEBUG on; everything else must keep it out.
    assert "private-detail-xyz" not in "".join(r.getMessage() for r in caplog.records if r.name != "django.db.backends")


# --- the admin ---------------------------------------------------------------------------------


def test_editing_the_reason_in_the_admin_goes_through_the_service(staff, book, patient, doctor, admin_user, tomorrow):
    appointment = book(patient=patient, doctor=doctor, time="09:00", reason="old")
    notifications_before = Notification.objects.count()

    response = staff.post(
        f"{CHANGELIST}{appointment.pk}/change/",
        {"date": tomorrow.isoformat(), "time": "09:00", "status": "CONFIRMED", "reason": "new"},
    )

    assert response.status_code == 302
    assert Appointment.objects.get(pk=appointment.pk).reason == "new"
    last = Appointment.objects.get(pk=appointment.pk).history.latest()
    assert (last.history_user, last.reason) == (admin_user, "new")
    # Both sides' screens follow; nobody is notified (the reason stays out of notification text).
    for user in (patient, doctor.user):
        event = Event.objects.filter(user=user).order_by("seq").last()
        assert (event.type, event.data["reason"]) == ("appointment_updated", "new")
    assert Notification.objects.count() == notifications_before


def test_one_admin_save_of_status_and_reason_is_one_change_each_by_staff(staff, book, patient, doctor, tomorrow):
    appointment = book(patient=patient, doctor=doctor, time="09:00", reason="old")

    staff.post(
        f"{CHANGELIST}{appointment.pk}/change/",
        {"date": tomorrow.isoformat(), "time": "10:00", "status": "COMPLETED", "reason": "seen"},
    )

    rows = list(Appointment.objects.get(pk=appointment.pk).history.order_by("history_id"))
    assert [r.history_user.email for r in rows] == ["pat@example.com"] + ["boss@example.com"] * 3
    assert [(r.time.hour, r.status, r.reason) for r in rows[1:]] == [
        (10, "CONFIRMED", "old"),
        (10, "COMPLETED", "old"),
        (10, "COMPLETED", "seen"),
    ]


def test_a_refused_admin_change_leaves_the_reason_alone(staff, book, patient, patient2, doctor, tomorrow):
    book(patient=patient2, doctor=doctor, time="10:00")
    appointment = book(patient=patient, doctor=doctor, time="09:00", reason="old")

    staff.post(
        f"{CHANGELIST}{appointment.pk}/change/",
        {"date": tomorrow.isoformat(), "time": "10:00", "status": "CONFIRMED", "reason": "new"},
    )

    assert Appointment.objects.get(pk=appointment.pk).reason == "old"
    assert Appointment.objects.get(pk=appointment.pk).history.count() == 1


def test_the_admin_shows_the_history_read_only(staff, book, patient, doctor, tomorrow):
    appointment = book(patient=patient, doctor=doctor, time="09:00")
    appointment_transition(actor=doctor.user, appointment=appointment, to_status=Status.CANCELLED)
    first = appointment.history.earliest()

    page = staff.get(f"{CHANGELIST}{appointment.pk}/history/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Dr. Doc" in html or "doc@example.com" in html
    assert "CANCELLED" in html

    version = f"{CHANGELIST}{appointment.pk}/history/{first.pk}/"
    assert staff.get(version).status_code == 200
    # No revert: a past version is never saved back past the services.
    reverted = staff.post(version, {"date": tomorrow.isoformat(), "time": "09:00", "status": "CONFIRMED"})
    assert reverted.status_code == 405
    assert Appointment.objects.get(pk=appointment.pk).status == Status.CANCELLED
    assert appointment.history.count() == 2
