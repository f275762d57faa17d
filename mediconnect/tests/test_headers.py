"""Security headers: a strict Content-Security-Policy on every page, `no-store` on tokens and
patient data, and portal pages with nothing inline for the policy to refuse."""

import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD
from tests.support import bearer_client
from tests.support.asgiutil import asgi_get

STRICT = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "font-src": {"'self'"},
    "connect-src": {"'self'"},
    "worker-src": {"'self'"},  # the installable app's service worker, /sw.js
    "manifest-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}


def policy(header: str) -> dict[str, set[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = set(values)
    return directives


@pytest.fixture
def signed_in(client, request):
    """`signed_in("patient")` → the test client with that fixture's user signed in."""

    def sign_in(who):
        user = request.getfixturevalue(who)
        client.force_login(getattr(user, "user", user))
        return client

    return sign_in


PAGES = [
    (None, "/login/"),
    (None, "/password/reset/"),
    (None, "/api/docs/"),
    (None, "/api/schema/"),
    (None, "/healthz"),
    (None, "/no-such-page/"),
    (None, "/board/demo-board/"),
    (None, "/board/no-such-board/"),
    (None, "/api/boards/demo-board/"),
    ("patient", "/patient/"),
    ("patient", "/password/change/"),
    ("patient", "/api/me/"),
    ("doctor", "/doctor/"),
    ("admin_user", "/admin/"),
    ("admin_user", "/admin/accounts/user/"),
    ("admin_user", "/admin/appointments/appointment/add/"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "path"), PAGES)
def test_every_response_carries_the_strict_policy_and_no_store(client, signed_in, who, path):
    if who:
        client = signed_in(who)

    response = client.get(path)

    assert response.status_code in (200, 404), response.status_code
    assert policy(response["Content-Security-Policy"]) == STRICT
    assert "no-store" in response["Cache-Control"]


INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    re.compile(r"<style\b", re.I),
    re.compile(r"\sstyle=", re.I),
    re.compile(r"\son[a-z]+=", re.I),
    re.compile(r"javascript:", re.I),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "path"),
    [
        (None, "/login/"),
        (None, "/password/reset/"),
        (None, "/api/docs/"),
        ("patient", "/patient/"),
        ("patient", "/password/change/"),
        ("doctor", "/doctor/"),
        (None, "/board/demo-board/"),
        (None, "/board/demo-board/?lang=bn"),
        (None, "/board/no-such-board/"),
    ],
)
def test_our_pages_have_no_inline_script_or_style_for_the_policy_to_refuse(client, signed_in, who, path):
    if path.startswith("/board/"):
        call_command("seed_demo", stdout=None)
    if who:
        client = signed_in(who)

    page = client.get(path).content.decode()

    for pattern in INLINE:
        assert not pattern.search(page), (pattern.pattern, pattern.search(page))


@pytest.mark.django_db
def test_token_responses_are_no_store(patient):
    anon = APIClient()
    obtained = anon.post("/api/auth/token/", {"email": patient.email, "password": PASSWORD}, format="json")
    refreshed = anon.post("/api/auth/token/refresh/", {"refresh": obtained.json()["refresh"]}, format="json")
    refused = anon.post("/api/auth/token/", {"email": patient.email, "password": "wrong"}, format="json")
    session = APIClient()
    session.force_login(patient)
    socket_token = session.get("/api/auth/ws-token/")

    for response in (obtained, refreshed, refused, socket_token):
        assert response.status_code in (200, 401)
        assert response["Cache-Control"] == "no-store"
    assert "access" in socket_token.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/me/", "/api/appointments/", "/api/notifications/", "/api/notifications/unread-count/"]
)
def test_patient_data_over_the_api_is_no_store(patient, path):
    response = bearer_client(patient).get(path)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db(transaction=True)
async def test_through_the_asgi_application_pages_get_both_headers_and_static_files_stay_cacheable():
    status, headers, _ = await asgi_get("/login/")
    assert status == 200
    assert policy(headers[b"Content-Security-Policy"].decode()) == STRICT
    assert "no-store" in headers[b"Cache-Control"].decode().split(", ")  # beside LoginView's never_cache

    status, headers, _ = await asgi_get("/static/css/app.css")
    assert status == 200
    assert b"no-store" not in headers.get(b"Cache-Control", b"")
