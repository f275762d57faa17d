"""The endpoints the portals lean on: the socket token, the language choice and the free-slot grid."""

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from appointments.services import appointment_book, appointment_cancel

pytestmark = pytest.mark.django_db


def session_client(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_a_signed_in_page_gets_a_socket_token_for_its_own_user(patient):
    response = session_client(patient).get("/api/auth/ws-token/")
    assert response.status_code == 200
    token = AccessToken(response.json()["access"])
    assert str(token["user_id"]) == str(patient.pk)


def test_no_session_no_socket_token(client):
    assert client.get("/api/auth/ws-token/").status_code == 401


def test_language_choice_is_validated_and_stored(patient):
    client = APIClient()
    client.force_authenticate(patient)
    assert client.post("/api/me/language/", {"language": "xx"}, format="json").status_code == 400
    response = client.post("/api/me/language/", {"language": "bn"}, format="json")
    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.language == "bn"


def test_the_slot_grid_marks_taken_times_and_frees_cancelled_ones(patient, doctor, settings):
    settings.CLINIC_HOURS = {"start": datetime.time(9), "end": datetime.time(10), "slot_minutes": 15}
    day = timezone.localdate() + datetime.timedelta(days=1)
    held = appointment_book(actor=patient, doctor=doctor, date=day, time=datetime.time(9, 15))
    client = APIClient()
    client.force_authenticate(patient)

    body = client.get(f"/api/doctors/{doctor.pk}/slots/", {"date": day.isoformat()}).json()
    assert body == {
        "doctor": doctor.pk,
        "date": day.isoformat(),
        "slots": [
            {"time": "09:00", "available": True},
            {"time": "09:15", "available": False},
            {"time": "09:30", "available": True},
            {"time": "09:45", "available": True},
        ],
    }

    appointment_cancel(actor=patient, appointment=held)
    body = client.get(f"/api/doctors/{doctor.pk}/slots/", {"date": day.isoformat()}).json()
    assert all(slot["available"] for slot in body["slots"])


def test_the_slot_grid_needs_a_valid_date_and_a_real_doctor(patient, doctor):
    client = APIClient()
    client.force_authenticate(patient)
    response = client.get(f"/api/doctors/{doctor.pk}/slots/", {"date": "tomorrow"})
    assert response.status_code == 400 and "date" in response.json()
    assert client.get("/api/doctors/999999/slots/", {"date": "2030-01-01"}).status_code == 404
