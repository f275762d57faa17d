"""The appointments REST API as a client sees it: who sees what, booking, changes, idempotency; and the docs."""

import datetime
import itertools

import pytest

from appointments.models import Appointment, Status
from appointments.tests.factories import AppointmentFactory
from notifications.models import Notification
from tests.support import ALL_STATUSES, APPOINTMENT_KEYS, CONTRACT_MOVES

pytestmark = pytest.mark.django_db

LIST_KEYS = {"count", "next", "previous", "results"}
VIEWERS = ["patient", "patient2", "doctor", "doctor2", "admin_user"]


@pytest.fixture
def as_(request, api):
    """`as_("doctor")` → a JWT client of a conftest user fixture, by name."""
    return lambda name: api(request.getfixturevalue(name))


@pytest.fixture
def three(book, patient, patient2, doctor, doctor2, tomorrow):
    """patient+doctor, patient2+doctor, patient+doctor2; booked in this order."""
    return [
        book(patient=patient, doctor=doctor, time="09:00"),
        book(patient=patient2, doctor=doctor, time="09:30"),
        book(patient=patient, doctor=doctor2, time="09:00", date=tomorrow + datetime.timedelta(days=1)),
    ]


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def set_status(appointment, status):
    Appointment.objects.filter(pk=appointment.pk).update(status=status)


# --- list and detail ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("viewer", "visible"),
    [("patient", [0, 2]), ("patient2", [1]), ("doctor", [0, 1]), ("doctor2", [2]), ("admin_user", [0, 1, 2])],
)
def test_list_shows_what_the_caller_may_see_newest_first(as_, three, viewer, visible):
    response = as_(viewer).get("/api/appointments/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == LIST_KEYS
    assert body["count"] == len(visible)
    assert ids(response) == [three[i].pk for i in reversed(visible)]
    assert all(set(row) == APPOINTMENT_KEYS for row in body["results"])


def test_the_appointment_object(as_, book, patient, doctor, tomorrow):
    appointment = book(patient=patient, doctor=doctor, time="14:05", reason="headache")

    body = as_("patient").get(f"/api/appointments/{appointment.pk}/").json()

    assert set(body) == APPOINTMENT_KEYS
    assert {k: body[k] for k in APPOINTMENT_KEYS - {"created_at", "updated_at"}} == {
        "id": appointment.pk,
        "patient": patient.pk,
        "patient_name": "Pat Patient",
        "doctor": doctor.pk,
        "doctor_name": "Dr. Doc",
        "date": tomorrow.isoformat(),
        "time": "14:05",
        "status": "CONFIRMED",
        "queue_number": 1,
        "mode": "IN_PERSON",
        "reason": "headache",
    }
    assert datetime.datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert datetime.datetime.fromisoformat(body["updated_at"]).tzinfo is not None


def test_list_filters_by_status_and_date(as_, three, tomorrow):
    set_status(three[0], Status.CANCELLED)
    client = as_("admin_user")

    assert ids(client.get("/api/appointments/", {"status": "CANCELLED"})) == [three[0].pk]
    assert ids(client.get("/api/appointments/", {"status": "CONFIRMED"})) == [three[2].pk, three[1].pk]
    assert ids(client.get("/api/appointments/", {"date": tomorrow.isoformat()})) == [three[1].pk, three[0].pk]
    assert ids(client.get("/api/appointments/", {"date": tomorrow.isoformat(), "status": "CONFIRMED"})) == [three[1].pk]
    # Filters narrow the caller's own view; they never widen it.
    assert ids(as_("patient2").get("/api/appointments/", {"status": "CANCELLED"})) == []


@pytest.mark.parametrize("query", [{"status": "DONE"}, {"date": "tomorrow"}, {"date": "2030-02-30"}])
def test_a_malformed_filter_is_400(as_, three, query):
    response = as_("admin_user").get("/api/appointments/", query)
    assert response.status_code == 400
    assert set(query) <= set(response.json())


def test_list_pagination_and_the_page_size_cap(as_, patient, doctor):
    AppointmentFactory.create_batch(105, patient=patient, doctor=doctor)
    client = as_("patient")

    default = client.get("/api/appointments/").json()
    assert default["count"] == 105 and default["previous"] is None and default["next"]
    assert len(default["results"]) == 20

    page = client.get("/api/appointments/", {"page_size": 10, "page": 2}).json()
    assert len(page["results"]) == 10 and page["previous"] and page["next"]

    capped = client.get("/api/appointments/", {"page_size": 1000}).json()
    assert len(capped["results"]) == 100
    last = client.get("/api/appointments/", {"page_size": 1000, "page": 2}).json()
    assert len(last["results"]) == 5 and last["next"] is None
    assert len({r["id"] for r in capped["results"] + last["results"]}) == 105


@pytest.mark.parametrize("viewer", VIEWERS)
def test_detail_is_404_not_403_for_someone_elses_appointment(as_, book, patient, doctor, viewer):
    appointment = book(patient=patient, doctor=doctor)
    client = as_(viewer)
    may_see = viewer in {"patient", "doctor", "admin_user"}

    assert client.get(f"/api/appointments/{appointment.pk}/").status_code == (200 if may_see else 404)
    if may_see:
        return
    url = f"/api/appointments/{appointment.pk}/"
    assert client.patch(url, {"status": "CANCELLED"}, format="json").status_code == 404
    assert client.put(url, {"status": "CANCELLED"}, format="json").status_code == 404
    assert client.patch(url, {"time": "15:00"}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    appointment.refresh_from_db()
    assert (appointment.status, appointment.time) == (Status.CONFIRMED, datetime.time(9, 0))


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_an_unknown_appointment_is_404(as_, method):
    assert getattr(as_("admin_user"), method)("/api/appointments/999999/").status_code == 404


# --- create ------------------------------------------------------------------------------------


def test_booking_returns_201_confirmed_with_the_next_queue_number(as_, patient, patient2, doctor, tomorrow):
    numbers = []
    for who, time in (("patient", "09:00"), ("patient2", "10:00"), ("patient", "08:00")):
        response = as_(who).post(
            "/api/appointments/",
            {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": time, "reason": "check-up"},
            format="json",
        )
        assert response.status_code == 201
        body = response.json()
        assert set(body) == APPOINTMENT_KEYS
        assert (body["status"], body["time"], body["doctor"]) == ("CONFIRMED", time, doctor.pk)
        numbers.append(body["queue_number"])

    assert numbers == [1, 2, 3]
    assert Appointment.objects.filter(doctor=doctor, date=tomorrow).count() == 3
    assert Notification.objects.filter(user=patient, type="APPOINTMENT_CONFIRMED").count() == 2
    assert Notification.objects.filter(user=doctor.user, type="APPOINTMENT_BOOKED").count() == 3


def test_booking_without_a_reason_and_for_today(as_, patient, doctor, today):
    response = as_("patient").post(
        "/api/appointments/", {"doctor": doctor.pk, "date": today.isoformat(), "time": "00:00"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["reason"] == ""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date": "past"}, "date"),
        ({"date": "2030-02-30"}, "date"),
        ({"date": "30/01/2030"}, "date"),
        ({"date": ""}, "date"),
        ({"doctor": 999999}, "doctor"),
        ({"doctor": "dr-doc"}, "doctor"),
        ({"time": "25:00"}, "time"),
        ({"time": "9am"}, "time"),
        ({"time": "09:61"}, "time"),
        ({"time": "09:00:30"}, "time"),
        ({"time": None}, "time"),
        ({"reason": "x" * 5000}, "reason"),
    ],
)
def test_bad_booking_input_is_400_keyed_by_field(as_, patient, doctor, today, tomorrow, change, field):
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}
    body.update(change)
    if body["date"] == "past":
        body["date"] = (today - datetime.timedelta(days=1)).isoformat()

    response = as_("patient").post("/api/appointments/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Appointment.objects.exists()
    assert not Notification.objects.exists()


def test_missing_booking_fields_are_each_named(as_, patient):
    response = as_("patient").post("/api/appointments/", {}, format="json")
    assert response.status_code == 400
    assert {"doctor", "date", "time"} <= set(response.json())


def test_a_held_slot_is_409(as_, book, patient, patient2, doctor, tomorrow):
    book(patient=patient, doctor=doctor, time="09:00")

    response = as_("patient2").post(
        "/api/appointments/", {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}, format="json"
    )

    assert response.status_code == 409
    assert Appointment.objects.count() == 1
    assert not Notification.objects.filter(user=patient2).exists()


def test_a_cancelled_slot_is_bookable_again(as_, book, patient, patient2, doctor, tomorrow):
    first = book(patient=patient, doctor=doctor, time="09:00")
    as_("patient").delete(f"/api/appointments/{first.pk}/")

    response = as_("patient2").post(
        "/api/appointments/", {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["queue_number"] == 2


def test_a_patient_naming_another_patient_books_for_themselves(as_, patient, patient2, doctor, tomorrow):
    response = as_("patient").post(
        "/api/appointments/",
        {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00", "patient": patient2.pk},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["patient"] == patient.pk
    assert Appointment.objects.get().patient == patient
    assert not Notification.objects.filter(user=patient2).exists()


@pytest.mark.parametrize("sent", [999999, "me", None, "doctor"])
def test_a_patient_books_for_themselves_whatever_patient_says(as_, patient, doctor, tomorrow, sent):
    response = as_("patient").post(
        "/api/appointments/",
        {
            "doctor": doctor.pk,
            "date": tomorrow.isoformat(),
            "time": "09:00",
            "patient": doctor.user.pk if sent == "doctor" else sent,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["patient"] == patient.pk


def test_a_deactivated_doctor_cannot_be_booked(as_, patient, doctor, tomorrow):
    doctor.user.is_active = False
    doctor.user.save()

    response = as_("patient").post(
        "/api/appointments/", {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}, format="json"
    )

    assert response.status_code == 400
    assert "doctor" in response.json()
    assert not Appointment.objects.exists()


@pytest.mark.parametrize("booker", ["doctor", "admin_user"])
def test_a_doctor_or_admin_books_for_a_named_patient(as_, booker, patient, doctor, tomorrow):
    response = as_(booker).post(
        "/api/appointments/",
        {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00", "patient": patient.pk},
        format="json",
    )

    assert response.status_code == 201
    assert (response.json()["patient"], response.json()["patient_name"]) == (patient.pk, "Pat Patient")
    assert Notification.objects.get(user=patient).type == "APPOINTMENT_CONFIRMED"
    # Without naming a patient there is no one to book for.
    missing = as_(booker).post(
        "/api/appointments/", {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "10:00"}, format="json"
    )
    assert missing.status_code == 400 and "patient" in missing.json()


def test_staff_cannot_book_a_doctor_as_the_patient(as_, doctor, doctor2, tomorrow):
    response = as_("admin_user").post(
        "/api/appointments/",
        {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00", "patient": doctor2.user.pk},
        format="json",
    )
    assert response.status_code == 400 and "patient" in response.json()


def test_a_doctor_cannot_book_into_another_doctors_day(as_, patient, doctor, doctor2, tomorrow):
    response = as_("doctor").post(
        "/api/appointments/",
        {"doctor": doctor2.pk, "date": tomorrow.isoformat(), "time": "09:00", "patient": patient.pk},
        format="json",
    )
    assert response.status_code == 403
    assert not Appointment.objects.exists()


def test_booking_ignores_status_and_queue_number_in_the_body(as_, patient, doctor, tomorrow):
    response = as_("patient").post(
        "/api/appointments/",
        {
            "doctor": doctor.pk,
            "date": tomorrow.isoformat(),
            "time": "09:00",
            "status": "COMPLETED",
            "queue_number": 42,
            "id": 777,
        },
        format="json",
    )

    assert response.status_code == 201
    stored = Appointment.objects.get()
    assert (response.json()["status"], response.json()["queue_number"]) == ("CONFIRMED", 1)
    assert (stored.status, stored.queue_number) == (Status.CONFIRMED, 1)
    assert response.json()["id"] == stored.pk


# --- PATCH / PUT: status ----------------------------------------------------------------------


ROLE_FIXTURE = {"patient": "patient", "doctor": "doctor", "admin": "admin_user"}


@pytest.mark.parametrize("role", ["patient", "doctor", "admin"])
@pytest.mark.parametrize(("from_status", "to_status"), list(itertools.product(ALL_STATUSES, repeat=2)))
def test_patch_status_moves(as_, book, patient, doctor, role, from_status, to_status):
    appointment = book(patient=patient, doctor=doctor)
    set_status(appointment, from_status)

    response = as_(ROLE_FIXTURE[role]).patch(
        f"/api/appointments/{appointment.pk}/", {"status": to_status}, format="json"
    )

    allowed = CONTRACT_MOVES.get((from_status, to_status))
    appointment.refresh_from_db()
    if allowed is None:
        assert response.status_code == 400
        assert "status" in response.json()
        assert appointment.status == from_status
    elif role not in allowed:
        assert response.status_code == 403
        assert appointment.status == from_status
    else:
        assert response.status_code == 200
        assert set(response.json()) == APPOINTMENT_KEYS
        assert response.json()["status"] == to_status
        assert appointment.status == to_status


def test_patch_with_an_unknown_status_is_400(as_, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)
    response = as_("doctor").patch(f"/api/appointments/{appointment.pk}/", {"status": "DONE"}, format="json")
    assert response.status_code == 400 and "status" in response.json()


def test_patch_status_stores_the_contract_notifications(as_, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)
    url = f"/api/appointments/{appointment.pk}/"

    assert as_("doctor").patch(url, {"status": "COMPLETED"}, format="json").status_code == 200

    review = Notification.objects.get(user=patient, type="REVIEW_REQUEST")
    assert (review.title, review.related_id, review.related_type) == (
        "How was your appointment?",
        appointment.pk,
        "Appointment",
    )


def test_patch_ignores_read_only_fields(as_, book, patient, patient2, doctor, doctor2):
    appointment = book(patient=patient, doctor=doctor, reason="original")

    response = as_("admin_user").patch(
        f"/api/appointments/{appointment.pk}/",
        {"patient": patient2.pk, "doctor": doctor2.pk, "queue_number": 42, "reason": "changed", "id": 5},
        format="json",
    )

    assert response.status_code == 200
    appointment.refresh_from_db()
    assert (appointment.patient, appointment.doctor, appointment.queue_number) == (patient, doctor, 1)
    assert response.json()["queue_number"] == 1 and response.json()["patient"] == patient.pk


# --- PATCH / PUT: reschedule ------------------------------------------------------------------


def test_patch_date_and_time_reschedules(as_, book, patient, doctor, tomorrow):
    appointment = book(patient=patient, doctor=doctor, time="09:00")
    later = tomorrow + datetime.timedelta(days=2)

    response = as_("patient").patch(
        f"/api/appointments/{appointment.pk}/", {"date": later.isoformat(), "time": "16:45"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["date"], response.json()["time"]) == (later.isoformat(), "16:45")
    assert response.json()["queue_number"] == 1
    appointment.refresh_from_db()
    assert (appointment.date, appointment.time) == (later, datetime.time(16, 45))
    kinds = Notification.objects.filter(type="APPOINTMENT_RESCHEDULED")
    assert sorted(n.user_id for n in kinds) == sorted([patient.pk, doctor.user.pk])


def test_patch_to_a_held_slot_is_409(as_, book, patient, patient2, doctor):
    book(patient=patient2, doctor=doctor, time="10:00")
    appointment = book(patient=patient, doctor=doctor, time="09:00")

    response = as_("doctor").patch(f"/api/appointments/{appointment.pk}/", {"time": "10:00"}, format="json")

    assert response.status_code == 409
    appointment.refresh_from_db()
    assert appointment.time == datetime.time(9, 0)
    assert not Notification.objects.filter(type="APPOINTMENT_RESCHEDULED").exists()


@pytest.mark.parametrize(("change", "field"), [({"date": "past"}, "date"), ({"time": "25:00"}, "time")])
def test_patch_with_a_bad_date_or_time_is_400(as_, book, patient, doctor, today, change, field):
    appointment = book(patient=patient, doctor=doctor)
    if change.get("date") == "past":
        change = {"date": (today - datetime.timedelta(days=1)).isoformat()}

    response = as_("patient").patch(f"/api/appointments/{appointment.pk}/", change, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_patch_is_all_or_nothing(as_, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor, time="09:00")

    response = as_("patient").patch(
        f"/api/appointments/{appointment.pk}/", {"time": "11:00", "status": "COMPLETED"}, format="json"
    )

    assert response.status_code == 403
    appointment.refresh_from_db()
    assert (appointment.time, appointment.status) == (datetime.time(9, 0), Status.CONFIRMED)
    assert not Notification.objects.filter(type="APPOINTMENT_RESCHEDULED").exists()


def test_put_behaves_like_patch(as_, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor, time="09:00")
    url = f"/api/appointments/{appointment.pk}/"

    moved = as_("patient").put(url, {"time": "12:30"}, format="json")
    assert moved.status_code == 200 and moved.json()["time"] == "12:30"

    assert as_("patient").put(url, {"status": "COMPLETED"}, format="json").status_code == 403
    assert as_("patient").put(url, {"status": "PENDING"}, format="json").status_code == 400
    done = as_("doctor").put(url, {"status": "COMPLETED", "queue_number": 9}, format="json")
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["queue_number"]) == ("COMPLETED", 1)


# --- DELETE ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["patient", "doctor", "admin_user"])
def test_delete_cancels_and_keeps_the_row(as_, book, patient, doctor, who):
    appointment = book(patient=patient, doctor=doctor)

    response = as_(who).delete(f"/api/appointments/{appointment.pk}/")

    assert response.status_code == 200
    assert set(response.json()) == APPOINTMENT_KEYS
    assert response.json()["status"] == "CANCELLED"
    assert Appointment.objects.get(pk=appointment.pk).status == Status.CANCELLED
    cancelled = Notification.objects.filter(type="APPOINTMENT_CANCELLED")
    assert sorted(n.user_id for n in cancelled) == sorted([patient.pk, doctor.user.pk])
    # Cancelling twice is a move that does not exist.
    assert as_(who).delete(f"/api/appointments/{appointment.pk}/").status_code == 400


def test_delete_of_a_completed_appointment_is_400(as_, book, patient, doctor):
    appointment = book(patient=patient, doctor=doctor)
    set_status(appointment, Status.COMPLETED)
    assert as_("patient").delete(f"/api/appointments/{appointment.pk}/").status_code == 400
    assert Appointment.objects.get(pk=appointment.pk).status == Status.COMPLETED


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_a_repeated_idempotent_booking_returns_the_first_response(as_, patient, doctor, tomorrow):
    client = as_("patient")
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00", "reason": "x"}

    first = client.post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert Appointment.objects.count() == 1
    assert Notification.objects.count() == 2


def test_an_idempotency_record_keeps_no_reason_and_its_replay_still_has_it(as_, patient, doctor, tomorrow):
    from appointments.models import IdempotencyRecord

    client = as_("patient")
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00", "reason": "  chest pain "}

    first = client.post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-r")
    stored = IdempotencyRecord.objects.get(key="k-r")
    again = client.post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-r")

    assert first.json()["reason"] == "chest pain"
    assert "chest pain" not in str(stored.response_body)
    assert stored.response_body["id"] == first.json()["id"]
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_an_idempotency_key_reused_for_another_request_is_400(as_, patient, doctor, tomorrow):
    client = as_("patient")
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}
    assert client.post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2").status_code == 201

    response = client.post("/api/appointments/", {**body, "time": "10:00"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 400
    assert Appointment.objects.count() == 1


def test_idempotency_keys_belong_to_one_user(as_, patient, patient2, doctor, tomorrow):
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}
    mine = as_("patient").post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="shared")

    theirs = as_("patient2").post(
        "/api/appointments/", {**body, "time": "10:00"}, format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert theirs.json()["id"] != mine.json()["id"] and theirs.json()["patient"] == patient2.pk


def test_a_refused_idempotent_booking_does_not_use_up_the_key(as_, book, patient, patient2, doctor, tomorrow):
    held = book(patient=patient2, doctor=doctor, time="09:00")
    client = as_("patient")
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "09:00"}
    assert client.post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-3").status_code == 409

    as_("patient2").delete(f"/api/appointments/{held.pk}/")
    retry = client.post("/api/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-3")

    assert retry.status_code == 201
    assert retry.json()["patient"] == patient.pk


# --- the documentation -------------------------------------------------------------------------

CONTRACT_PATHS = [
    "/api/auth/register/",
    "/api/auth/token/",
    "/api/auth/token/refresh/",
    "/api/me/",
    "/api/doctors/",
    "/api/doctors/{id}/",
    "/api/appointments/",
    "/api/appointments/{id}/",
    "/api/appointments/{id}/history/",
    "/api/notifications/",
    "/api/notifications/unread-count/",
    "/api/notifications/{id}/read/",
    "/api/notifications/read-all/",
    "/api/queues/{doctor_id}/",
    "/api/queues/{doctor_id}/next/",
]


def test_the_schema_is_openapi_3_with_the_contract_paths(client):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    missing = [path for path in CONTRACT_PATHS if path not in schema["paths"]]
    assert missing == []
    appointment_methods = set(schema["paths"]["/api/appointments/{id}/"])
    assert {"get", "patch", "put", "delete"} <= appointment_methods


def test_the_docs_page_serves_its_assets_locally(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/" in html
    for cdn in ("cdn.", "jsdelivr", "unpkg", "cdnjs", "https://", "http://"):
        assert cdn not in html, cdn
