"""Staff edit users in the Django admin: the role and the staff flag it implies change together, by a service."""

from unittest import mock

import pytest

from accounts import services
from accounts.models import Role, User
from accounts.tests.factories import UserFactory
from core import outbox
from core.errors import InvalidInput

pytestmark = pytest.mark.django_db

GOOD = "a-G00d-passphrase"


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
    return user.role, user.is_staff


def test_choosing_the_admin_role_makes_a_user_staff(staff):
    user = UserFactory()

    assert change(staff, user, role=Role.ADMIN).status_code == 302  # the staff box left unticked

    assert flags(user) == (Role.ADMIN, True)


def test_an_admin_is_always_staff(staff, admin_user):
    other = UserFactory(role=Role.ADMIN, is_staff=True)

    assert change(staff, other).status_code == 302  # the staff box unticked, the role kept

    assert flags(other) == (Role.ADMIN, True)


@pytest.mark.parametrize(("box", "staff_after"), [({}, False), ({"is_staff": "on"}, True)])
def test_leaving_the_admin_role_keeps_the_staff_flag_only_when_ticked(staff, box, staff_after):
    """A doctor who also runs the clinic keeps the staff box ticked."""
    user = UserFactory(role=Role.ADMIN, is_staff=True)

    assert change(staff, user, role=Role.DOCTOR, **box).status_code == 302

    assert flags(user) == (Role.DOCTOR, staff_after)


def test_an_admin_added_in_the_admin_is_staff(staff):
    body = {"email": "new-admin@example.com", "name": "New", "role": Role.ADMIN, "password1": GOOD, "password2": GOOD}
    body |= {"usable_password": "true", "doctor_profile-TOTAL_FORMS": "0", "doctor_profile-INITIAL_FORMS": "0"}

    assert staff.post("/admin/accounts/user/add/", body).status_code == 302

    assert flags(User.objects.get(email="new-admin@example.com")) == (Role.ADMIN, True)


def test_the_admin_changes_role_and_staff_through_the_service_which_closes_the_users_sockets(staff):
    user = UserFactory()
    with mock.patch.object(outbox, "close_user_sockets") as closed:
        assert change(staff, user, name="Renamed").status_code == 302
        closed.assert_not_called()  # nothing of the role changed
        assert change(staff, user, name="Renamed", role=Role.DOCTOR).status_code == 302

    closed.assert_called_once_with(user.pk)
    assert flags(user) == (Role.DOCTOR, False)


@pytest.mark.parametrize(
    ("before", "role", "is_staff", "after"),
    [
        ((Role.PATIENT, False), Role.ADMIN, None, (Role.ADMIN, True)),
        ((Role.ADMIN, True), Role.DOCTOR, None, (Role.DOCTOR, False)),
        ((Role.DOCTOR, True), Role.PATIENT, None, (Role.PATIENT, True)),  # not ADMIN: the flag is kept
        ((Role.DOCTOR, False), Role.ADMIN, False, (Role.ADMIN, True)),  # an Admin is staff, whatever is asked
        ((Role.ADMIN, True), Role.DOCTOR, True, (Role.DOCTOR, True)),
    ],
)
def test_user_set_role_keeps_the_admin_role_and_the_staff_flag_together(before, role, is_staff, after):
    user = UserFactory(role=before[0], is_staff=before[1])

    services.user_set_role(user=user, role=role, is_staff=is_staff)

    assert flags(user) == after


def test_an_unknown_role_is_refused_on_role():
    with pytest.raises(InvalidInput) as refused:
        services.user_set_role(user=UserFactory(), role="OWNER")
    assert refused.value.field == "role"


def test_an_admin_made_with_create_user_is_staff():
    assert flags(User.objects.create_user("a@example.com", GOOD, name="A", role=Role.ADMIN)) == (Role.ADMIN, True)
