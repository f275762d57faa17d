import pytest

from accounts.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("who", "landing"),
    [("patient", "/patient/"), ("doctor", "/doctor/"), ("admin_user", "/admin/")],
)
def test_login_with_email_lands_each_role_on_its_page(client, request, who, landing):
    user = request.getfixturevalue(who)
    user = getattr(user, "user", user)
    password = "x-Str0ng-pass" if who == "admin_user" else PASSWORD

    response = client.post("/login/", {"email": user.email.upper(), "password": password})

    assert response.status_code == 302
    assert response["Location"] == landing
    assert client.get(landing).status_code == 200


def test_wrong_password_shows_an_error_and_logs_nobody_in(client, patient):
    response = client.post("/login/", {"email": patient.email, "password": "wrong"})

    assert response.status_code == 400
    assert b"do not match" in response.content
    assert "_auth_user_id" not in client.session
    assert client.get("/patient/").status_code == 302  # back to the login page


def test_login_page_has_the_contract_field_names(client):
    body = client.get("/login/").content.decode()
    assert 'name="email"' in body and 'name="password"' in body


def test_next_parameter_is_honoured_only_for_this_site(client, patient):
    response = client.post("/login/", {"email": patient.email, "password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/patient/"


def test_a_patient_cannot_open_the_doctor_console(client, patient):
    client.force_login(patient)
    assert client.get("/doctor/").status_code == 403


def test_logout_ends_the_session(client, patient):
    client.force_login(patient)
    client.post("/logout/")
    assert client.get("/patient/").status_code == 302


def test_a_superuser_without_the_staff_flag_lands_on_the_admin_and_may_use_it(client):
    """One notion of admin: `User.is_admin` decides the landing page, the API's role and the admin site."""
    from accounts.tests.factories import UserFactory

    user = UserFactory(is_superuser=True)  # role PATIENT, is_staff False
    response = client.post("/login/", {"email": user.email, "password": PASSWORD})

    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/appointments/appointment/").status_code == 200
