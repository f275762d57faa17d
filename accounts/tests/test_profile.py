"""`PATCH /api/me/`: a user changes their own name, phone, language and notification choices."""

import pytest

from accounts.models import Role, User

pytestmark = pytest.mark.django_db


def test_a_patient_changes_their_profile_and_gets_the_user_back(api, patient):
    response = api(patient).patch(
        "/api/me/",
        {"name": "Pat Renamed", "phone": "01712345678", "language": "bn", "notify_email": False, "notify_sms": True},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {
        "id": patient.pk,
        "email": "pat@example.com",
        "name": "Pat Renamed",
        "role": "PATIENT",
        "doctor_id": None,
        "phone": "01712345678",
        "language": "bn",
        "notify_email": False,
        "notify_sms": True,
    }
    assert api(patient).get("/api/me/").json() == response.json()
    patient.refresh_from_db()
    assert (patient.name, patient.phone, patient.language, patient.notify_email, patient.notify_sms) == (
        "Pat Renamed",
        "01712345678",
        "bn",
        False,
        True,
    )


def test_a_patch_changes_only_the_keys_it_sends(api, patient):
    response = api(patient).patch("/api/me/", {"notify_sms": True}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["language"], body["notify_email"], body["notify_sms"]) == (
        "Pat Patient",
        "en",
        True,
        True,
    )


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("01712345678", "01712345678"),
        ("+8801712345678", "+8801712345678"),
        ("+880 1712-345678", "+8801712345678"),
        ("০১৭১২৩৪৫৬৭৮", "01712345678"),  # typed with Bangla digits
        ("+4915112345678", "+4915112345678"),
        ("", ""),
        (None, ""),
    ],
)
def test_phone_numbers_are_accepted_and_stored_as_digits(api, patient, sent, stored):
    response = api(patient).patch("/api/me/", {"phone": sent}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["phone"] == stored
    patient.refresh_from_db()
    assert patient.phone == stored


@pytest.mark.parametrize(
    "body",
    [
        {"phone": "1234567"},  # too short
        {"phone": "1234567890123456"},  # longer than E.164
        {"phone": "01712abc678"},
        {"phone": "++8801712345678"},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 151},
        {"language": "fr"},
        {"notify_email": "maybe"},
        {"notify_sms": None},
    ],
)
def test_a_bad_field_is_a_400_keyed_by_field_and_changes_nothing(api, patient, body):
    before = User.objects.filter(pk=patient.pk).values().get()

    response = api(patient).patch("/api/me/", {**body, "language": body.get("language", "bn")}, format="json")

    assert response.status_code == 400
    assert set(response.json()) & set(body) == set(body)
    assert User.objects.filter(pk=patient.pk).values().get() == before


def test_other_keys_cannot_be_changed_through_me(api, patient):
    response = api(patient).patch(
        "/api/me/",
        {
            "name": "Pat",
            "email": "owned@example.com",
            "role": Role.ADMIN,
            "is_staff": True,
            "is_superuser": True,
            "is_active": False,
            "id": 999,
            "password": "x",
        },
        format="json",
    )

    assert response.status_code == 200
    patient.refresh_from_db()
    assert (patient.pk, patient.email, patient.role, patient.is_staff, patient.is_superuser, patient.is_active) == (
        response.json()["id"],
        "pat@example.com",
        Role.PATIENT,
        False,
        False,
        True,
    )
    assert patient.check_password("Str0ng-pass-123")


def test_a_doctor_keeps_their_doctor_id_after_a_patch(api, doctor):
    body = api(doctor).patch("/api/me/", {"name": "Dr. Doc Renamed"}, format="json").json()
    assert (body["name"], body["role"], body["doctor_id"]) == ("Dr. Doc Renamed", "DOCTOR", doctor.pk)
    assert api(doctor).get("/api/doctors/").json()["results"][0]["name"] == "Dr. Doc Renamed"


def test_patch_with_the_portal_session_needs_csrf(patient):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(patient)

    response = client.patch("/api/me/", {"name": "Forged"}, content_type="application/json")

    assert response.status_code == 403
    patient.refresh_from_db()
    assert patient.name == "Pat Patient"


def test_patch_without_a_token_is_401(client, patient):
    assert client.patch("/api/me/", {"name": "Nobody"}, content_type="application/json").status_code == 401


def test_the_language_endpoint_returns_the_same_user_object(api, patient):
    body = api(patient).post("/api/me/language/", {"language": "bn"}, format="json").json()
    assert body == api(patient).get("/api/me/").json()
    assert body["language"] == "bn"
