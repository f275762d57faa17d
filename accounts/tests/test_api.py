"""Accounts over the REST API: registration, JWT tokens, /api/me/ and the doctor directory."""

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import Role, User
from accounts.tests.factories import PASSWORD
from tests.support import bearer_client

pytestmark = pytest.mark.django_db


ME_KEYS = {"id", "email", "name", "role", "doctor_id", "phone", "language", "notify_email", "notify_sms"}


@pytest.fixture
def anon():
    return APIClient()


def obtain(client, email, password):
    return client.post("/api/auth/token/", {"email": email, "password": password}, format="json")


# --- register --------------------------------------------------------------------------------


def test_register_creates_a_patient_and_returns_the_user_object(anon):
    response = anon.post(
        "/api/auth/register/",
        {"email": "new@example.com", "password": "a-G00d-passphrase", "name": "New"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name", "role"}
    assert body["email"] == "new@example.com" and body["name"] == "New" and body["role"] == "PATIENT"
    user = User.objects.get(pk=body["id"])
    assert user.check_password("a-G00d-passphrase")
    assert obtain(anon, "new@example.com", "a-G00d-passphrase").status_code == 200


@pytest.mark.parametrize("role", ["ADMIN", "DOCTOR"])
def test_register_ignores_a_role_in_the_body(anon, role):
    response = anon.post(
        "/api/auth/register/",
        {
            "email": "sneaky@example.com",
            "password": "a-G00d-passphrase",
            "name": "Sneaky",
            "role": role,
            "is_staff": True,
            "is_superuser": True,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["role"] == "PATIENT"
    user = User.objects.get(email="sneaky@example.com")
    assert (user.role, user.is_staff, user.is_superuser) == (Role.PATIENT, False, False)


@pytest.mark.parametrize("email", ["pat@example.com", "PAT@Example.com"])
def test_register_with_a_taken_email_is_400(anon, patient, email):
    response = anon.post(
        "/api/auth/register/", {"email": email, "password": "a-G00d-passphrase", "name": "Again"}, format="json"
    )

    assert response.status_code == 400
    assert "email" in response.json()
    assert User.objects.filter(email__iexact="pat@example.com").count() == 1


@pytest.mark.parametrize("password", ["123", "password", "12345678901", "weakling@example.com"])
def test_register_with_a_weak_password_is_400_on_password(anon, password):
    response = anon.post(
        "/api/auth/register/", {"email": "weakling@example.com", "password": password, "name": "Weak"}, format="json"
    )

    assert response.status_code == 400
    assert "password" in response.json()
    assert not User.objects.filter(email="weakling@example.com").exists()


def test_register_without_fields_names_each_missing_field(anon):
    response = anon.post("/api/auth/register/", {}, format="json")

    assert response.status_code == 400
    assert {"email", "password", "name"} <= set(response.json())


# --- tokens ----------------------------------------------------------------------------------


def test_token_returns_access_and_refresh_that_work(anon, patient):
    response = obtain(anon, patient.email, PASSWORD)

    assert response.status_code == 200
    body = response.json()
    assert {"access", "refresh"} <= set(body)
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert anon.get("/api/me/").json()["id"] == patient.pk


@pytest.mark.parametrize(
    ("email", "password"),
    [("pat@example.com", "wrong-password"), ("nobody@example.com", PASSWORD), ("pat@example.com", PASSWORD.upper())],
)
def test_token_with_wrong_credentials_is_401(anon, patient, email, password):
    response = obtain(anon, email, password)
    assert response.status_code == 401
    assert "access" not in response.json()


def test_token_without_a_password_is_400_on_password(anon, patient):
    response = obtain(anon, patient.email, "")
    assert response.status_code == 400
    assert "password" in response.json()


def test_token_for_a_deactivated_user_is_401(anon, patient):
    patient.is_active = False
    patient.save()
    assert obtain(anon, patient.email, PASSWORD).status_code == 401


def test_token_email_is_case_insensitive(anon, patient):
    response = obtain(anon, "PAT@EXAMPLE.COM", PASSWORD)
    assert response.status_code == 200
    assert "access" in response.json()


def test_refresh_rotates_and_the_old_refresh_is_rejected(anon, patient):
    first = obtain(anon, patient.email, PASSWORD).json()

    response = anon.post("/api/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")

    assert response.status_code == 200
    rotated = response.json()
    assert {"access", "refresh"} <= set(rotated)
    assert rotated["refresh"] != first["refresh"]
    assert AccessToken(rotated["access"])["user_id"] in (patient.pk, str(patient.pk))
    # The used refresh token is blacklisted; the new one still works once.
    replay = anon.post("/api/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")
    assert replay.status_code == 401
    assert "access" not in replay.json()
    assert anon.post("/api/auth/token/refresh/", {"refresh": rotated["refresh"]}, format="json").status_code == 200


@pytest.mark.parametrize("refresh", ["garbage", ""])
def test_refresh_with_a_bad_token_is_refused(anon, refresh):
    response = anon.post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert response.status_code == (401 if refresh else 400)


def test_the_refresh_token_of_a_deleted_user_is_refused_like_any_invalid_one(anon, patient):
    refresh = obtain(anon, patient.email, PASSWORD).json()["refresh"]
    patient.delete()
    anon.raise_request_exception = False  # a crash must show as the client sees it

    response = anon.post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "token_not_valid"
    assert "access" not in response.json()


def test_an_access_token_is_not_a_refresh_token(anon, patient):
    access = str(AccessToken.for_user(patient))
    assert anon.post("/api/auth/token/refresh/", {"refresh": access}, format="json").status_code == 401


# --- /api/me/ --------------------------------------------------------------------------------


def test_me_for_a_patient(api, patient):
    response = api(patient).get("/api/me/")

    assert response.status_code == 200
    assert response.json() == {
        "id": patient.pk,
        "email": "pat@example.com",
        "name": "Pat Patient",
        "role": "PATIENT",
        "doctor_id": None,
        "phone": "",
        "language": "en",
        "notify_email": True,
        "notify_sms": False,
    }


def test_me_for_a_doctor_carries_the_doctor_profile_id(api, doctor, doctor2):
    body = api(doctor2).get("/api/me/").json()

    assert set(body) == ME_KEYS
    assert (body["id"], body["role"], body["doctor_id"]) == (doctor2.user.pk, "DOCTOR", doctor2.pk)


def test_me_for_an_admin(api, admin_user):
    body = api(admin_user).get("/api/me/").json()
    assert set(body) == ME_KEYS
    assert (body["role"], body["doctor_id"]) == ("ADMIN", None)


def test_me_with_the_portal_session(client, patient):
    client.force_login(patient)
    response = client.get("/api/me/")
    assert response.status_code == 200
    assert response.json()["id"] == patient.pk


def _expired_access(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - datetime.timedelta(hours=1), lifetime=datetime.timedelta(minutes=5))
    return str(token)


@pytest.mark.parametrize(
    "authorization",
    ["missing", "Bearer garbage", "Bearer ", "Token abc", "expired", "refresh", "tampered"],
)
@pytest.mark.parametrize(
    "path",
    ["/api/me/", "/api/doctors/", "/api/appointments/", "/api/notifications/", "/api/notifications/unread-count/"],
)
def test_calls_without_a_valid_access_token_are_401(anon, patient, authorization, path):
    header = {
        "missing": None,
        "expired": f"Bearer {_expired_access(patient)}",
        "refresh": f"Bearer {RefreshToken.for_user(patient)}",
        "tampered": f"Bearer {str(AccessToken.for_user(patient))[:-3]}abc",
    }.get(authorization, authorization)
    if header:
        anon.credentials(HTTP_AUTHORIZATION=header)

    response = anon.get(path)

    assert response.status_code == 401
    assert "results" not in response.json() and "id" not in response.json()


def test_an_access_token_stops_working_once_expired(patient):
    client = bearer_client(patient)
    assert client.get("/api/me/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {_expired_access(patient)}")
    assert client.get("/api/me/").status_code == 401


# --- doctors ---------------------------------------------------------------------------------


def test_doctor_list_is_paginated_with_the_doctor_objects(api, patient, doctor, doctor2):
    response = api(patient).get("/api/doctors/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2 and body["previous"] is None and body["next"] is None
    assert sorted(body["results"], key=lambda d: d["id"]) == [
        {"id": doctor.pk, "name": "Dr. Doc", "specialty": "Cardiology"},
        {"id": doctor2.pk, "name": "Dr. Other", "specialty": "ENT"},
    ]


def test_doctor_list_pages(api, patient, doctor, doctor2):
    client = api(patient)
    first = client.get("/api/doctors/", {"page_size": 1}).json()
    assert (first["count"], len(first["results"])) == (2, 1)
    assert first["next"] is not None

    second = client.get("/api/doctors/", {"page_size": 1, "page": 2}).json()
    assert len(second["results"]) == 1 and second["previous"] is not None
    assert {first["results"][0]["id"], second["results"][0]["id"]} == {doctor.pk, doctor2.pk}
    assert client.get("/api/doctors/", {"page": 3, "page_size": 1}).status_code == 404


def test_doctor_list_leaves_out_deactivated_doctors(api, patient, doctor, doctor2):
    doctor2.user.is_active = False
    doctor2.user.save()
    assert [d["id"] for d in api(patient).get("/api/doctors/").json()["results"]] == [doctor.pk]


def test_doctor_detail(api, patient, doctor):
    response = api(patient).get(f"/api/doctors/{doctor.pk}/")

    assert response.status_code == 200
    assert response.json() == {"id": doctor.pk, "name": "Dr. Doc", "specialty": "Cardiology"}
    assert api(patient).get(f"/api/doctors/{doctor.pk + 999}/").status_code == 404


def test_the_doctor_directory_is_read_only(api, admin_user, doctor):
    client = api(admin_user)
    assert client.post("/api/doctors/", {"name": "X", "specialty": "Y"}, format="json").status_code == 405
    assert client.delete(f"/api/doctors/{doctor.pk}/").status_code == 405


# --- /api/auth/ws-token/ ---------------------------------------------------------------------


def test_ws_token_serves_the_portal_session(client, patient):
    client.force_login(patient)
    response = client.get("/api/auth/ws-token/")
    assert response.status_code == 200
    assert str(AccessToken(response.json()["access"])["user_id"]) == str(patient.pk)


def test_ws_token_refuses_a_bearer_caller_so_an_access_token_cannot_renew_itself(api, patient):
    response = api(patient).get("/api/auth/ws-token/")
    assert response.status_code == 403
    assert "access" not in response.json()


def test_ws_token_refuses_a_bearer_caller_even_with_a_session_cookie(client, patient):
    client.force_login(patient)
    response = client.get("/api/auth/ws-token/", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(patient)}")
    assert response.status_code == 403
