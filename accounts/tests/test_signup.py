"""The portal's sign-up page: the API's registration rules, then signed in on /patient/."""

from unittest import mock

import pytest
from rest_framework.test import APIClient

from accounts.models import Role, User

pytestmark = pytest.mark.django_db

GOOD = "a-G00d-passphrase"


def signup(client, *, email="new@example.com", name="New Patient", password=GOOD, password2=None, **extra):
    password2 = password if password2 is None else password2
    body = {"name": name, "email": email, "password": password, "password2": password2}
    return client.post("/signup/", body, **extra)


def test_the_login_page_links_to_sign_up_and_the_page_has_its_fields(client):
    assert 'href="/signup/"' in client.get("/login/").content.decode()
    page = client.get("/signup/")
    assert page.status_code == 200
    for field in ("name", "email", "password", "password2"):
        assert f'name="{field}"' in page.content.decode()


def test_sign_up_creates_a_patient_signs_them_in_and_lands_on_the_patient_page(client):
    response = signup(client, email="New@Example.com")

    assert response.status_code == 302 and response["Location"] == "/patient/"
    user = User.objects.get(email="new@example.com")
    assert (user.role, user.name, user.is_staff) == (Role.PATIENT, "New Patient", False)
    assert user.check_password(GOOD)
    assert client.get("/patient/").status_code == 200


def test_sign_up_ignores_a_role_in_the_form(client):
    assert signup(client, role="ADMIN", is_staff="on").status_code == 302
    user = User.objects.get(email="new@example.com")
    assert (user.role, user.is_staff, user.is_superuser) == (Role.PATIENT, False, False)


@pytest.mark.parametrize("email", ["pat@example.com", "PAT@example.COM"])
def test_a_taken_email_is_refused_like_the_api_refuses_it(client, patient, email):
    response = signup(client, email=email)
    assert response.status_code == 400
    assert b'data-testid="signup-error-email"' in response.content
    assert b"already exists" in response.content
    assert User.objects.filter(email__iexact=email).count() == 1


@pytest.mark.parametrize("password", ["123", "password", "12345678901", "new@example.com"])
def test_a_weak_password_is_refused_by_djangos_validators(client, password):
    response = signup(client, name="New Patient", password=password)
    assert response.status_code == 400
    assert b'data-testid="signup-error-password"' in response.content
    assert not User.objects.filter(email="new@example.com").exists()


def test_the_two_passwords_must_match_and_nothing_is_created(client):
    response = signup(client, password2="a-G00d-passphrase-typo")
    assert response.status_code == 400
    assert b'data-testid="signup-error-password2"' in response.content
    assert not User.objects.exists()


def test_the_sign_up_page_speaks_bangla(client):
    body = client.get("/signup/", HTTP_ACCEPT_LANGUAGE="bn").content.decode()
    assert "অ্যাকাউন্ট খুলুন" in body and "পুরো নাম" in body
    response = signup(client, password2="different-passphrase-1", HTTP_ACCEPT_LANGUAGE="bn")
    assert "দুটি পাসওয়ার্ড মেলেনি।" in response.content.decode()


def test_a_signed_in_user_opening_sign_up_goes_to_their_page(client, doctor):
    client.force_login(doctor.user)
    response = client.get("/signup/")
    assert response.status_code == 302 and response["Location"] == "/doctor/"


def test_sign_up_needs_the_csrf_token():
    from django.test import Client

    assert signup(Client(enforce_csrf_checks=True)).status_code == 403
    assert not User.objects.exists()


def test_an_email_taken_between_the_check_and_the_insert_is_refused_on_email(client):
    from accounts.services import user_register

    def taken_meanwhile(**fields):
        user_register(email="new@example.com", password=GOOD, name="Quicker")
        return user_register(**fields)

    with mock.patch("accounts.views.user_register", taken_meanwhile):
        response = signup(client)
    assert response.status_code == 400
    assert b'data-testid="signup-error-email"' in response.content
    assert User.objects.get(email="new@example.com").name == "Quicker"

    with mock.patch("accounts.api.user_register", taken_meanwhile):
        User.objects.all().delete()
        body = {"email": "new@example.com", "password": GOOD, "name": "Slower"}
        response = APIClient().post("/api/auth/register/", body, format="json")
    assert response.status_code == 400 and "email" in response.json()
