"""/settings/: the portal's form for what PATCH /api/me/ changes, with the same rules."""

import pytest

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

VALID = {"name": "Pat Renamed", "phone": "০১৭১২-৩৪৫৬৭৮", "language": "en", "notify_sms": "on"}


def test_a_patient_saves_and_the_page_says_so(client, patient):
    client.force_login(patient)
    answer = client.post("/settings/", VALID)
    assert answer.status_code == 302 and answer["Location"] == "/settings/?saved=1"
    patient.refresh_from_db()
    # The API's rules: Bangla digits and separators make the same number.
    assert (patient.name, patient.phone, patient.notify_email, patient.notify_sms) == (
        "Pat Renamed",
        "01712345678",
        False,
        True,
    )
    assert 'data-testid="settings-saved"' in client.get("/settings/?saved=1").content.decode()


def test_errors_are_shown_by_field_and_nothing_changes(client, patient):
    client.force_login(patient)
    answer = client.post("/settings/", {**VALID, "name": "", "phone": "12ab", "language": "fr"})
    assert answer.status_code == 200
    form = answer.context["form"]
    assert set(form.errors) == {"name", "phone", "language"}
    page = answer.content.decode()
    assert 'id="err-phone" data-error-for="phone"></div>' not in page  # the phone's message is beside it
    patient.refresh_from_db()
    assert patient.name == "Pat Patient" and patient.language == "en"


def test_the_language_chosen_is_the_pages_and_the_cookies(client, patient):
    client.force_login(patient)
    answer = client.post("/settings/", {**VALID, "language": "bn"})
    assert answer.cookies["django_language"].value == "bn"
    assert '<html lang="bn">' in client.get("/settings/").content.decode()


def test_doctors_have_it_staff_and_strangers_do_not(client, doctor):
    assert client.get("/settings/").status_code == 302  # to /login/
    client.force_login(doctor.user)
    assert client.get("/settings/").status_code == 200
    client.force_login(UserFactory(role="ADMIN", is_staff=True))
    assert client.get("/settings/").status_code == 403
