"""The portal's password pages: change (signed in) and reset by email, in English and Bangla."""

import re

import pytest
from channels.db import database_sync_to_async
from django.core import mail
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from accounts.password_views import reset_limit_key
from accounts.tests.factories import PASSWORD
from mediconnect.tests.test_settings import settings_under
from tests.support.wsutil import open_socket, ready

NEW = "a-Fresh-passphrase-42"


def change(client, *, old=PASSWORD, new=NEW, confirm=None):
    return client.post(
        "/password/change/",
        {"old_password": old, "new_password1": new, "new_password2": confirm or new},
    )


def reset_link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/password/reset/[^/\s]+/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


@pytest.fixture(autouse=True)
def _fresh_reset_counts():
    """Each test starts with no reset emails counted for its users' addresses."""
    emails = ["pat@example.com", "pat2@example.com"]
    cache.delete_many([reset_limit_key(e) for e in emails])
    yield
    cache.delete_many([reset_limit_key(e) for e in emails])


# --- change -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_change_page_needs_a_signed_in_user(client):
    response = client.get("/password/change/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/password/change/"


@pytest.mark.django_db
def test_changing_the_password_keeps_this_session_and_ends_the_others(patient):
    here, elsewhere = Client(), Client()
    here.force_login(patient)
    elsewhere.force_login(patient)

    response = change(here)

    assert response.status_code == 302 and response["Location"] == "/password/change/done/"
    assert "Your password has been changed." in here.get("/password/change/done/").content.decode()
    patient.refresh_from_db()
    assert patient.check_password(NEW) and not patient.check_password(PASSWORD)
    assert here.get("/patient/").status_code == 200
    assert elsewhere.get("/patient/").status_code == 302  # signed out: its session hash is stale


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("old", "new", "confirm", "error"),
    [
        ("wrong-old-pass", NEW, None, "Your old password was entered incorrectly."),
        (PASSWORD, "short", None, "This password is too short."),
        (PASSWORD, "password123", None, "This password is too common."),
        (PASSWORD, NEW, "something-else-42", "The two password fields didn"),
    ],
)
def test_a_refused_change_says_why_and_keeps_the_old_password(client, patient, old, new, confirm, error):
    client.force_login(patient)

    response = change(client, old=old, new=new, confirm=confirm)

    assert response.status_code == 200
    assert error in response.content.decode()
    patient.refresh_from_db()
    assert patient.check_password(PASSWORD)


@pytest.mark.django_db(transaction=True)
async def test_a_password_change_closes_the_users_open_sockets_with_4401(patient, patient2):
    phone, other = await open_socket(patient), await open_socket(patient2)
    await ready(phone), await ready(other)
    client = Client()
    await database_sync_to_async(client.force_login)(patient)

    response = await database_sync_to_async(change)(client)

    assert response.status_code == 302
    assert await phone.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    assert await other.receive_nothing(timeout=0.2)
    await other.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_refused_change_leaves_the_sockets_open(patient):
    socket = await open_socket(patient)
    await ready(socket)
    client = Client()
    await database_sync_to_async(client.force_login)(patient)

    response = await database_sync_to_async(change)(client, old="wrong-old-pass")

    assert response.status_code == 200
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()


@pytest.mark.django_db
def test_a_password_change_signs_the_apps_out_their_refresh_tokens_no_longer_work(client, patient):
    anon = APIClient()
    phone = anon.post("/api/auth/token/", {"email": patient.email, "password": PASSWORD}, format="json").json()
    tablet = anon.post("/api/auth/token/", {"email": patient.email, "password": PASSWORD}, format="json").json()
    rotated = anon.post("/api/auth/token/refresh/", {"refresh": tablet["refresh"]}, format="json").json()
    client.force_login(patient)

    assert change(client).status_code == 302

    for refresh in (phone["refresh"], rotated["refresh"]):
        assert anon.post("/api/auth/token/refresh/", {"refresh": refresh}, format="json").status_code == 401
    after = anon.post("/api/auth/token/", {"email": patient.email, "password": NEW}, format="json").json()
    assert anon.post("/api/auth/token/refresh/", {"refresh": after["refresh"]}, format="json").status_code == 200


# --- reset ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_login_page_links_to_the_reset_page(client):
    page = client.get("/login/").content.decode()
    assert 'href="/password/reset/"' in page
    assert client.get("/password/reset/").status_code == 200


@pytest.mark.django_db
def test_reset_by_email_sets_a_new_password_with_a_link_that_works_once(client, patient):
    response = client.post("/password/reset/", {"email": "PAT@example.com"})

    assert response.status_code == 302 and response["Location"] == "/password/reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["pat@example.com"]
    assert message.subject == "Reset your MediConnect password"
    assert message.from_email == "MediConnect <no-reply@localhost>"
    link = reset_link(message)

    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and 'name="new_password1"' in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": NEW, "new_password2": NEW})

    assert response.status_code == 302 and response["Location"] == "/password/reset/done/"
    patient.refresh_from_db()
    assert patient.check_password(NEW)
    assert "_auth_user_id" not in client.session  # a reset signs no one in
    assert client.post("/login/", {"email": patient.email, "password": NEW}).status_code == 302

    again = Client().get(link, follow=True)
    assert 'data-testid="password-reset-invalid"' in again.content.decode()
    assert 'name="new_password1"' not in again.content.decode()


@pytest.mark.django_db
def test_a_reset_for_an_unknown_or_inactive_email_looks_the_same_and_sends_nothing(client, patient):
    patient.is_active = False
    patient.save(update_fields=["is_active"])

    for email in ("nobody@example.com", "pat@example.com"):
        response = client.post("/password/reset/", {"email": email})
        assert response.status_code == 302 and response["Location"] == "/password/reset/sent/"
    assert mail.outbox == []


@pytest.mark.django_db
def test_one_address_gets_a_bounded_number_of_reset_emails(client, patient, patient2, settings):
    settings.PASSWORD_RESET_EMAILS_PER_HOUR = 2

    for _ in range(4):
        response = client.post("/password/reset/", {"email": patient.email.upper()})
        assert response.status_code == 302 and response["Location"] == "/password/reset/sent/"
    client.post("/password/reset/", {"email": patient2.email})

    assert [m.to for m in mail.outbox] == [[patient.email], [patient.email], [patient2.email]]


@pytest.mark.django_db
def test_a_tampered_reset_link_is_refused(client, patient):
    client.post("/password/reset/", {"email": patient.email})
    link = reset_link(mail.outbox[0])

    page = client.get(link[:-2] + "x/", follow=True).content.decode()

    assert 'data-testid="password-reset-invalid"' in page
    patient.refresh_from_db()
    assert patient.check_password(PASSWORD)


@pytest.mark.django_db(transaction=True)
async def test_a_reset_closes_the_users_open_sockets_with_4401(patient):
    socket = await open_socket(patient)
    await ready(socket)
    client = Client()

    def reset():
        client.post("/password/reset/", {"email": patient.email})
        set_url = client.get(reset_link(mail.outbox[0]), follow=True).redirect_chain[-1][0]
        return client.post(set_url, {"new_password1": NEW, "new_password2": NEW})

    response = await database_sync_to_async(reset)()

    assert response.status_code == 302
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


# --- Bangla -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_reset_pages_speak_the_visitors_language_and_the_email_the_accounts(client, patient, patient2, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "bn"
    assert "পাসওয়ার্ড ভুলে গেছেন?" in client.get("/login/").content.decode()
    page = client.get("/password/reset/").content.decode()
    assert "পাসওয়ার্ড রিসেট করুন" in page
    client.post("/password/reset/", {"email": patient.email})
    assert mail.outbox[0].subject == "Reset your MediConnect password"

    patient2.language = "bn"
    patient2.save(update_fields=["language"])
    Client().post("/password/reset/", {"email": patient2.email})  # asked from an English page
    bangla = mail.outbox[1]
    assert bangla.subject == "আপনার MediConnect পাসওয়ার্ড রিসেট করুন"
    assert "প্রিয় Second Patient," in bangla.body
    assert "/password/reset/" in bangla.body


@pytest.mark.django_db
def test_the_change_page_speaks_bangla(patient):
    patient.language = "bn"
    patient.save(update_fields=["language"])
    signed_in = Client()
    signed_in.force_login(patient)
    page = signed_in.get("/password/change/").content.decode()
    assert "পাসওয়ার্ড পরিবর্তন করুন" in page
    assert 'href="/password/change/"' in signed_in.get("/patient/").content.decode()


@pytest.mark.django_db
def test_the_default_mail_backend_logs_a_reset_emails_recipient_not_its_link(client, patient, settings, caplog, capsys):
    """With no mail server configured, mail goes to the log: a reset link there would let anyone who
    reads the log take over the account."""
    settings.EMAIL_BACKEND = settings_under({"SECRET_KEY": "k"}, ["EMAIL_BACKEND"])["EMAIL_BACKEND"]
    caplog.set_level("DEBUG")

    assert client.post("/password/reset/", {"email": patient.email}).status_code == 302

    written = caplog.text + "".join(capsys.readouterr())
    assert "/password/reset/" not in written, written
    assert patient.email in caplog.text
