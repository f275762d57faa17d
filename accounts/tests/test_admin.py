"""Staff edit users in the Django admin: the role and the staff flag it implies change together, by a service."""

from unittest import mock

import pytest

from accounts import services
from accounts.models import Role, User
from accounts.tests.factories import UserFactory
from notifications import stream

pytestmark = pytest.mark.django_db

GOOD = "a-G00d-passphrase"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def change(staff, user, **values):
    """POST the user's change form as the admin shows it, with `values` changed."""
    body = {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "language": user.language,
        "phone": user.phone,
        "notify_email": "on",
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "doctor_profile-TOTAL_FORMS": "0",
        "doctor_profile-INITIAL_FORMS": "0",
        "doctor_profile-MIN_NUM_FORMS": "0",
        "doctor_profile-MAX_NUM_FORMS": "1",
        **values,
    }
    return staff.post(f"/admin/accounts/user/{user.pk}/change/", body)


def flags(user) -> tuple:
    user.refresh_from_db()
    return user.role, user.is_staff, user.is_superuser


def test_making_a_user_an_admin_gives_the_staff_flag_and_taking_it_back_removes_both(staff):
    user = UserFactory()

    assert change(staff, user, role=Role.ADMIN).status_code == 302
    assert flags(user) == (Role.ADMIN, True, False)

    User.objects.filter(pk=user.pk).update(is_superuser=True)
    assert change(staff, user, role=Role.DOCTOR).status_code == 302
    assert flags(user) == (Role.DOCTOR, False, False)


def test_the_staff_flag_cannot_be_ticked_apart_from_the_role(staff):
    user = UserFactory()

    assert change(staff, user, is_staff="on").status_code == 302

    assert flags(user) == (Role.PATIENT, False, False)


def test_a_superuser_must_have_the_admin_role(staff):
    user = UserFactory()

    response = change(staff, user, is_superuser="on")

    assert response.status_code == 200  # the form again, with the error
    assert "Only a user with the Admin role may be a superuser." in response.content.decode()
    assert flags(user) == (Role.PATIENT, False, False)


def test_an_admin_added_in_the_admin_is_staff(staff):
    body = {"email": "new-admin@example.com", "name": "New", "role": Role.ADMIN, "password1": GOOD, "password2": GOOD}
    body |= {"usable_password": "true", "doctor_profile-TOTAL_FORMS": "0", "doctor_profile-INITIAL_FORMS": "0"}

    assert staff.post("/admin/accounts/user/add/", body).status_code == 302

    assert flags(User.objects.get(email="new-admin@example.com")) == (Role.ADMIN, True, False)


def test_a_role_change_closes_the_users_sockets_and_no_change_closes_none():
    user = UserFactory()
    with mock.patch.object(stream, "close_user_sockets") as closed:
        services.user_set_role(user=user, role=Role.PATIENT)
        closed.assert_not_called()
        services.user_set_role(user=user, role=Role.DOCTOR)
    closed.assert_called_once_with(user.pk)


def test_leaving_the_admin_role_ends_superuser_rights_too(admin_user):
    assert admin_user.is_admin

    services.user_set_role(user=admin_user, role=Role.DOCTOR)

    assert flags(admin_user) == (Role.DOCTOR, False, False)
    assert not admin_user.is_admin


def test_an_admin_made_with_create_user_is_staff():
    assert flags(User.objects.create_user("a@example.com", GOOD, name="A", role=Role.ADMIN)) == (
        Role.ADMIN,
        True,
        False,
    )
