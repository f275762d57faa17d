"""UserLanguageMiddleware: a signed-in user's portal speaks their stored language, over WSGI and ASGI."""

import logging

import pytest
from django.test import Client

from tests.support.asgiutil import asgi_get

BANGLA_TITLE = "রোগীর পোর্টাল"


@pytest.fixture
def bangla_patient_cookie(patient):
    """The session cookie of a signed-in patient whose account says Bangla (and no language cookie)."""
    patient.language = "bn"
    patient.save(update_fields=["language"])
    client = Client()
    client.force_login(patient)
    return f"sessionid={client.cookies['sessionid'].value}"


async def fetch_page(path: str, cookie: str) -> tuple[int, str]:
    status, _headers, body = await asgi_get(path, [(b"cookie", cookie.encode())])
    return status, body.decode()


@pytest.mark.django_db
def test_the_portal_speaks_the_signed_in_users_language(client, patient):
    client.force_login(patient)
    assert 'lang="en"' in client.get("/patient/").content.decode()

    patient.language = "bn"
    patient.save(update_fields=["language"])
    page = client.get("/patient/").content.decode()
    assert 'lang="bn"' in page
    assert BANGLA_TITLE in page


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_application_serves_the_portal_in_the_users_language(bangla_patient_cookie):
    status, page = await fetch_page("/patient/", bangla_patient_cookie)
    assert status == 200
    assert 'lang="bn"' in page
    assert BANGLA_TITLE in page


@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_visitor_through_asgi_gets_the_default_language():
    status, page = await fetch_page("/login/", "")
    assert status == 200
    assert 'lang="en"' in page


@pytest.mark.django_db(transaction=True)
async def test_the_user_the_middleware_loads_is_the_one_the_view_uses(bangla_patient_cookie, settings, caplog):
    settings.DEBUG = True  # Django logs each query in debug mode only
    with caplog.at_level(logging.DEBUG, logger="django.db.backends"):
        status, _ = await fetch_page("/patient/", bangla_patient_cookie)
    assert status == 200
    user_reads = [r for r in caplog.records if r.name == "django.db.backends" and 'FROM "accounts_user"' in r.sql]
    assert len(user_reads) == 1
