"""Signing out, deactivation and a new password end what the old credentials held, open sockets (4401) included."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from accounts.services import user_deactivate, user_set_password
from accounts.tests.factories import PASSWORD
from tests.support.wsutil import frame, mark_all_read, open_socket, ready

CLOSED_SIGNED_OUT = {"type": "websocket.close", "code": 4401}


def refresh_works(refresh: str) -> bool:
    return APIClient().post("/api/auth/token/refresh/", {"refresh": refresh}, format="json").status_code == 200


def tokens(user) -> dict:
    body = APIClient().post("/api/auth/token/", {"email": user.email, "password": PASSWORD}, format="json").json()
    return body


async def sockets_of(user, count=2):
    sockets = [await open_socket(user) for _ in range(count)]
    for socket in sockets:
        await ready(socket)
    return sockets


async def assert_closed_signed_out(sockets):
    for socket in sockets:
        assert await socket.receive_output(timeout=5) == CLOSED_SIGNED_OUT


async def assert_still_open(socket, user):
    await mark_all_read(user)
    assert (await frame(socket))["type"] == "all_notifications_read"
    await socket.disconnect()


# --- POST /api/auth/logout/ ----------------------------------------------------------------------


@pytest.mark.django_db
def test_api_logout_blacklists_the_refresh_token(patient):
    issued = tokens(patient)

    response = APIClient().post("/api/auth/logout/", {"refresh": issued["refresh"]}, format="json")

    assert response.status_code == 200
    assert response.json() == {}
    assert not refresh_works(issued["refresh"])


@pytest.mark.django_db
def test_api_logout_needs_no_access_token_and_ignores_an_expired_one(patient):
    issued = tokens(patient)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")
    assert client.post("/api/auth/logout/", {"refresh": issued["refresh"]}, format="json").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"refresh": ""}, {"refresh": "garbage"}, {"refresh": None}, ["refresh"]])
def test_api_logout_without_a_usable_refresh_token_is_400_on_refresh(body):
    response = APIClient().post("/api/auth/logout/", body, format="json")
    assert response.status_code == 400
    if isinstance(body, dict):
        assert "refresh" in response.json()


@pytest.mark.django_db
def test_api_logout_refuses_an_access_token_and_a_used_refresh_token(patient):
    client = APIClient()
    access = str(AccessToken.for_user(patient))
    assert client.post("/api/auth/logout/", {"refresh": access}, format="json").status_code == 400
    refresh = str(RefreshToken.for_user(patient))
    assert client.post("/api/auth/logout/", {"refresh": refresh}, format="json").status_code == 200
    response = client.post("/api/auth/logout/", {"refresh": refresh}, format="json")
    assert response.status_code == 400 and "refresh" in response.json()


@pytest.mark.django_db(transaction=True)
async def test_api_logout_closes_the_users_sockets_with_4401_and_no_one_elses(patient, patient2):
    mine, theirs = await sockets_of(patient), await open_socket(patient2)
    await ready(theirs)
    refresh = await database_sync_to_async(lambda: str(RefreshToken.for_user(patient)))()

    response = await database_sync_to_async(APIClient().post)("/api/auth/logout/", {"refresh": refresh}, format="json")

    assert response.status_code == 200
    await assert_closed_signed_out(mine)
    await assert_still_open(theirs, patient2)


# --- the portal's /logout/ -----------------------------------------------------------------------


@pytest.mark.django_db
def test_portal_logout_by_get_is_405_and_signs_nobody_out(client, patient):
    client.force_login(patient)
    assert client.get("/logout/").status_code == 405
    assert client.get("/patient/").status_code == 200


@pytest.mark.django_db
def test_portal_logout_needs_the_csrf_token(patient):
    client = Client(enforce_csrf_checks=True)
    client.force_login(patient)
    assert client.post("/logout/").status_code == 403
    assert client.get("/patient/").status_code == 200

    page = client.get("/patient/")
    csrf = page.context["csrf_token"]
    assert 'action="/logout/"' in page.content.decode() and 'data-testid="logout"' in page.content.decode()
    response = client.post("/logout/", {"csrfmiddlewaretoken": str(csrf)})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/patient/").status_code == 302


@pytest.mark.django_db(transaction=True)
async def test_portal_logout_closes_the_users_sockets_with_4401(patient):
    sockets = await sockets_of(patient)
    client = Client()
    await database_sync_to_async(client.force_login)(patient)

    response = await database_sync_to_async(client.post)("/logout/")

    assert response.status_code == 302
    await assert_closed_signed_out(sockets)


# --- deactivation ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_deactivating_a_user_closes_their_sockets_and_revokes_their_refresh_tokens(patient):
    issued = await database_sync_to_async(tokens)(patient)
    sockets = await sockets_of(patient)

    await database_sync_to_async(user_deactivate)(user=patient)

    await assert_closed_signed_out(sockets)
    assert not await database_sync_to_async(refresh_works)(issued["refresh"])
    assert not await database_sync_to_async(User.objects.filter(pk=patient.pk, is_active=True).exists)()


@pytest.mark.django_db(transaction=True)
async def test_unticking_active_in_the_admin_closes_the_users_sockets(admin_user, patient):
    sockets = await sockets_of(patient)
    staff = Client()
    await database_sync_to_async(staff.force_login)(admin_user)
    form = {
        "email": patient.email,
        "name": patient.name,
        "role": patient.role,
        "language": patient.language,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "10:00:00",
        "doctor_profile-TOTAL_FORMS": "0",
        "doctor_profile-INITIAL_FORMS": "0",
        # is_active left out: unticked
    }

    response = await database_sync_to_async(staff.post)(f"/admin/accounts/user/{patient.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    await assert_closed_signed_out(sockets)
    patient_now = await database_sync_to_async(User.objects.get)(pk=patient.pk)
    assert (patient_now.is_active, patient_now.name) == (False, patient.name)


@pytest.mark.django_db(transaction=True)
async def test_the_admins_deactivate_action_closes_each_users_sockets(admin_user, patient, patient2):
    sockets = [*(await sockets_of(patient, 1)), *(await sockets_of(patient2, 1))]
    staff = Client()
    await database_sync_to_async(staff.force_login)(admin_user)

    response = await database_sync_to_async(staff.post)(
        "/admin/accounts/user/", {"action": "deactivate_users", "_selected_action": [patient.pk, patient2.pk]}
    )

    assert response.status_code == 302
    await assert_closed_signed_out(sockets)
    still_active = User.objects.filter(pk__in=[patient.pk, patient2.pk], is_active=True)
    assert not await database_sync_to_async(still_active.exists)()


@pytest.mark.django_db
def test_a_deactivated_user_can_no_longer_sign_in_or_use_their_session(client, patient):
    client.force_login(patient)
    user_deactivate(user=patient)
    assert client.get("/patient/").status_code == 302
    assert client.post("/login/", {"email": patient.email, "password": PASSWORD}).status_code == 400


# --- a new password -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_new_password_closes_the_users_sockets_and_revokes_old_refresh_tokens(patient):
    issued = await database_sync_to_async(tokens)(patient)
    sockets = await sockets_of(patient)

    await database_sync_to_async(user_set_password)(user=patient, password="a-Brand-new-passphrase")

    await assert_closed_signed_out(sockets)
    assert not await database_sync_to_async(refresh_works)(issued["refresh"])
    login = await database_sync_to_async(APIClient().post)(
        "/api/auth/token/", {"email": patient.email, "password": "a-Brand-new-passphrase"}, format="json"
    )
    assert login.status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_the_admins_change_password_page_closes_the_users_sockets(admin_user, patient):
    sockets = await sockets_of(patient)
    staff = Client()
    await database_sync_to_async(staff.force_login)(admin_user)

    response = await database_sync_to_async(staff.post)(
        f"/admin/accounts/user/{patient.pk}/password/",
        {"password1": "a-Brand-new-passphrase", "password2": "a-Brand-new-passphrase", "usable_password": "true"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    await assert_closed_signed_out(sockets)
    patient_now = await database_sync_to_async(User.objects.get)(pk=patient.pk)
    assert patient_now.check_password("a-Brand-new-passphrase")


@pytest.mark.django_db
def test_a_new_password_revokes_rotated_refresh_tokens_too_but_not_other_users(patient, patient2):
    first = tokens(patient)
    rotated = APIClient().post("/api/auth/token/refresh/", {"refresh": first["refresh"]}, format="json").json()
    others = tokens(patient2)

    user_set_password(user=patient, password="a-Brand-new-passphrase")

    assert not refresh_works(rotated["refresh"])
    assert refresh_works(others["refresh"])
