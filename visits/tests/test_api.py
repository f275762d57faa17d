import datetime

import pytest
import time_machine
from django.utils import translation

from appointments.models import Mode, Status
from appointments.services import appointment_book, appointment_set_mode, appointment_transition
from notifications.models import Notification, NotificationType
from visits.models import CallLog

pytestmark = pytest.mark.django_db

MINUTE = datetime.timedelta(minutes=1)
SECOND = datetime.timedelta(seconds=1)
TURN = {"TURN_URLS": ["turn:127.0.0.1:3478?transport=udp"], "STUN_URLS": ["stun:127.0.0.1:3478"]}


@pytest.fixture(autouse=True)
def _turn(settings):
    settings.TURN_URLS, settings.STUN_URLS = TURN["TURN_URLS"], TURN["STUN_URLS"]
    settings.TURN_SECRET, settings.TURN_TTL_SECONDS = "coturn-secret", 3600


def call_url(appointment, tail=""):
    return f"/api/appointments/{appointment.pk}/call/{tail}"


# GET …/call/


def test_the_patient_gets_ice_servers_and_the_doctor_as_peer(api, video_visit, patient, doctor, starts_at):
    with time_machine.travel(starts_at, tick=False):
        response = api(patient).get(call_url(video_visit))
    assert response.status_code == 200
    body = response.json()
    assert body["peer"] == {"user_id": doctor.user.pk, "name": "Dr. Doc", "role": "DOCTOR"}
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    expiry = int(starts_at.timestamp()) + 3600
    assert turn["urls"] == TURN["TURN_URLS"]
    assert turn["username"] == f"{expiry}:{patient.pk}"
    assert len(turn["credential"]) == 28
    assert datetime.datetime.fromisoformat(body["expires_at"]).timestamp() == expiry
    assert "coturn-secret" not in response.content.decode()
    assert "chest pain" not in response.content.decode()


def test_the_doctor_gets_their_own_credentials_and_the_patient_as_peer(api, video_visit, patient, doctor, starts_at):
    with time_machine.travel(starts_at + 30 * MINUTE, tick=False):
        body = api(doctor).get(call_url(video_visit)).json()
    assert body["peer"] == {"user_id": patient.pk, "name": "Pat Patient", "role": "PATIENT"}
    assert body["ice_servers"][1]["username"].endswith(f":{doctor.user.pk}")


@pytest.mark.parametrize(
    ("offset", "status"),
    [
        (-15 * MINUTE - SECOND, 409),
        (-15 * MINUTE, 200),
        (120 * MINUTE, 200),
        (120 * MINUTE + SECOND, 409),
    ],
)
def test_the_call_opens_15_min_before_and_closes_2_hours_after(api, video_visit, patient, starts_at, offset, status):
    with time_machine.travel(starts_at + offset, tick=False):
        assert api(patient).get(call_url(video_visit)).status_code == status


def test_the_window_is_in_clinic_time(api, video_visit, patient, starts_at, settings):
    assert settings.TIME_ZONE == "Asia/Dhaka"  # UTC+6: 09:00 there is 03:00 UTC
    assert starts_at.utcoffset() == datetime.timedelta(hours=6)
    with time_machine.travel(starts_at, tick=False):
        assert api(patient).get(call_url(video_visit)).status_code == 200


def test_no_servers_configured_means_an_empty_list(api, video_visit, patient, starts_at, settings):
    settings.TURN_URLS, settings.STUN_URLS = [], []
    with time_machine.travel(starts_at, tick=False):
        assert api(patient).get(call_url(video_visit)).json()["ice_servers"] == []


def test_staff_who_may_see_it_get_403_and_others_404(api, video_visit, patient2, doctor2, admin_user, starts_at):
    with time_machine.travel(starts_at, tick=False):
        assert api(admin_user).get(call_url(video_visit)).status_code == 403
        assert api(patient2).get(call_url(video_visit)).status_code == 404
        assert api(doctor2).get(call_url(video_visit)).status_code == 404
        assert api(patient2).get("/api/appointments/999999/call/").status_code == 404
        assert api(patient2).get("/api/appointments/99999999999999/call/").status_code == 404


def test_an_in_person_or_unconfirmed_appointment_has_no_call(api, patient, doctor, video_visit, starts_at):
    in_person = appointment_book(actor=patient, doctor=doctor, date=video_visit.date, time=datetime.time(10, 0))
    with time_machine.travel(starts_at + 60 * MINUTE, tick=False):
        assert api(patient).get(call_url(in_person)).status_code == 409
        appointment_transition(actor=doctor.user, appointment=video_visit, to_status=Status.COMPLETED)
        assert api(patient).get(call_url(video_visit)).status_code == 409


def test_anonymous_callers_are_refused(client, video_visit):
    assert client.get(call_url(video_visit)).status_code == 401


# POST …/call/ring/


def test_the_doctor_rings_the_patient_who_gets_video_call(api, video_visit, patient, doctor, starts_at):
    with time_machine.travel(starts_at - 5 * MINUTE, tick=False):
        response = api(doctor).post(call_url(video_visit, "ring/"))
    assert response.status_code == 200 and response.json() == {}
    ring = Notification.objects.get(user=patient, type=NotificationType.VIDEO_CALL)
    assert (ring.title, ring.message) == ("Video visit", "Dr. Doc is calling you")
    assert (ring.related_type, ring.related_id) == ("Appointment", video_visit.pk)
    assert "chest pain" not in ring.message + ring.title
    assert not Notification.objects.filter(user=doctor.user, type=NotificationType.VIDEO_CALL).exists()


def test_a_bangla_patient_is_rung_in_bangla(api, video_visit, patient, doctor, starts_at):
    patient.language = "bn"
    patient.save(update_fields=["language"])
    with time_machine.travel(starts_at, tick=False):
        assert api(doctor).post(call_url(video_visit, "ring/")).status_code == 200
    ring = Notification.objects.get(user=patient, type=NotificationType.VIDEO_CALL)
    with translation.override("bn"):
        assert ring.title == translation.gettext("Video visit") != "Video visit"
        assert ring.message == translation.gettext("{doctor} is calling you").format(doctor="Dr. Doc")


def test_ringing_again_within_30_seconds_is_429_with_retry_after(api, video_visit, patient, doctor, starts_at):
    with time_machine.travel(starts_at, tick=False) as clock:
        assert api(doctor).post(call_url(video_visit, "ring/")).status_code == 200
        clock.shift(10)
        again = api(doctor).post(call_url(video_visit, "ring/"))
        assert again.status_code == 429
        assert again["Retry-After"] == "20"
        clock.shift(19)
        assert api(doctor).post(call_url(video_visit, "ring/"))["Retry-After"] == "1"
        clock.shift(1)
        assert api(doctor).post(call_url(video_visit, "ring/")).status_code == 200
    assert Notification.objects.filter(user=patient, type=NotificationType.VIDEO_CALL).count() == 2
    assert CallLog.objects.get(appointment=video_visit).rung_at is not None


def test_only_the_doctor_rings_and_under_the_same_conditions(api, video_visit, patient, admin_user, starts_at):
    with time_machine.travel(starts_at, tick=False):
        assert api(patient).post(call_url(video_visit, "ring/")).status_code == 403
        assert api(admin_user).post(call_url(video_visit, "ring/")).status_code == 403
    doctor = video_visit.doctor
    with time_machine.travel(starts_at - 16 * MINUTE, tick=False):
        assert api(doctor).post(call_url(video_visit, "ring/")).status_code == 409
    assert not Notification.objects.filter(type=NotificationType.VIDEO_CALL).exists()


# The mode: booking and PATCH


def test_booking_takes_a_mode_and_defaults_to_in_person(api, patient, doctor, tomorrow):
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "11:00", "mode": "VIDEO"}
    response = api(patient).post("/api/appointments/", body, format="json")
    assert response.status_code == 201 and response.json()["mode"] == "VIDEO"
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "11:30"}
    assert api(patient).post("/api/appointments/", body, format="json").json()["mode"] == "IN_PERSON"
    body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": "12:00", "mode": "PHONE"}
    response = api(patient).post("/api/appointments/", body, format="json")
    assert response.status_code == 400 and list(response.json()) == ["mode"]


@pytest.mark.parametrize("who", ["patient", "doctor", "admin_user"])
def test_patient_doctor_or_admin_may_change_the_mode(api, request, video_visit, who):
    actor = request.getfixturevalue(who)
    response = api(actor).patch(f"/api/appointments/{video_visit.pk}/", {"mode": "IN_PERSON"}, format="json")
    assert response.status_code == 200 and response.json()["mode"] == "IN_PERSON"
    history = api(actor).get(f"/api/appointments/{video_visit.pk}/history/").json()
    assert history[-1]["changes"] == {"mode": ["VIDEO", "IN_PERSON"]}


def test_a_bad_mode_is_a_field_error_and_changes_nothing(api, video_visit, patient):
    response = api(patient).patch(f"/api/appointments/{video_visit.pk}/", {"mode": "video"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["mode"]
    video_visit.refresh_from_db()
    assert video_visit.mode == Mode.VIDEO


def test_a_finished_appointments_mode_is_409(api, video_visit, patient, doctor):
    appointment_transition(actor=doctor.user, appointment=video_visit, to_status=Status.COMPLETED)
    response = api(patient).patch(f"/api/appointments/{video_visit.pk}/", {"mode": "IN_PERSON"}, format="json")
    assert response.status_code == 409
    video_visit.refresh_from_db()
    assert video_visit.mode == Mode.VIDEO


def test_others_cannot_change_the_mode(api, video_visit, patient2):
    response = api(patient2).patch(f"/api/appointments/{video_visit.pk}/", {"mode": "IN_PERSON"}, format="json")
    assert response.status_code == 404


def test_a_mode_change_tells_both_with_appointment_updated(video_visit, patient, doctor):
    from notifications.models import Event

    before = Event.objects.count()
    appointment_set_mode(actor=patient, appointment=video_visit, mode=Mode.IN_PERSON)
    events = Event.objects.order_by("pk")[before:]
    assert sorted((e.user_id, e.type) for e in events) == sorted(
        [(patient.pk, "appointment_updated"), (doctor.user.pk, "appointment_updated")]
    )
    assert all(e.data["mode"] == "IN_PERSON" for e in events)
    # The same mode again changes nothing and tells nobody.
    appointment_set_mode(actor=patient, appointment=video_visit, mode=Mode.IN_PERSON)
    assert Event.objects.count() == before + 2
