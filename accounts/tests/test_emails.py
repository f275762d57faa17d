"""One spelling of an email address: a look-alike of an existing account is refused, any case signs in."""

import pytest
from rest_framework.test import APIClient

from accounts.admin import EmailUserCreationForm
from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

GOOD = "a-G00d-passphrase"
DOTTED_I = "pat\u0130ent@test.com"  # a capital I with a dot above (Turkish): lower-cased, i + a combining dot
FULL_WIDTH = "\uff30\uff21\uff34\uff29\uff25\uff2e\uff34@test.com"  # PATIENT in full-width letters


def register(email):
    return APIClient().post(
        "/api/auth/register/", {"email": email, "password": GOOD, "name": "Look Alike"}, format="json"
    )


TAKEN = ["An account with this email already exists."]


# (Full-width letters and a bare combining mark never get this far: the email field refuses them.)
@pytest.mark.parametrize("lookalike", [DOTTED_I, "PAT\u0130ENT@Test.com", "PATIENT@test.com"])
def test_signing_up_with_a_lookalike_of_an_existing_address_is_400_on_email(lookalike):
    UserFactory(email="patient@test.com")

    response = register(lookalike)

    assert response.status_code == 400
    assert response.json() == {"email": TAKEN}
    assert User.objects.count() == 1


def test_an_existing_lookalike_account_blocks_the_plain_address_too():
    UserFactory(email="pati\u0307ent@test.com")  # stored before addresses were normalised

    response = register("patient@test.com")

    assert response.status_code == 400 and response.json() == {"email": TAKEN}


def test_the_portal_sign_up_refuses_a_lookalike(client):
    UserFactory(email="patient@test.com")
    body = {"name": "Look Alike", "email": DOTTED_I, "password": GOOD, "password2": GOOD}

    response = client.post("/signup/", body)

    assert response.status_code == 400
    assert TAKEN[0] in response.content.decode()
    assert User.objects.count() == 1


def test_the_admin_cannot_create_a_lookalike_account():
    UserFactory(email="patient@test.com")
    form = EmailUserCreationForm(
        data={"email": DOTTED_I, "name": "Look Alike", "role": "PATIENT", "password1": GOOD, "password2": GOOD}
    )

    assert not form.is_valid()
    assert form.errors["email"] == TAKEN


def test_a_new_address_is_stored_in_its_one_spelling():
    assert register("Pat\u0130ent@Example.COM").status_code == 201
    assert User.objects.get().email == "pati\u0307ent@example.com"


@pytest.mark.parametrize("typed", ["patient@test.com", "Patient@Test.COM", FULL_WIDTH])
def test_an_existing_lower_case_account_signs_in_however_its_address_is_typed(client, typed):
    UserFactory(email="patient@test.com")

    api = APIClient().post("/api/auth/token/", {"email": typed, "password": PASSWORD}, format="json")
    portal = client.post("/login/", {"email": typed, "password": PASSWORD})

    assert api.status_code == 200 and "access" in api.json()
    assert portal.status_code == 302 and portal["Location"] == "/patient/"


def test_a_password_reset_finds_the_account_by_any_spelling_that_signs_in(client):
    from django.core import mail

    assert register("Pat\u0130ent@example.com").status_code == 201

    assert client.post("/password/reset/", {"email": "PAT\u0130ENT@EXAMPLE.COM"}).status_code == 302

    assert [m.to for m in mail.outbox] == [["pati\u0307ent@example.com"]]
