import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from accounts.models import Doctor, Role, User

pytestmark = pytest.mark.django_db


def snapshot():
    return sorted(User.objects.values_list("email", "role", "password", "is_staff", "is_superuser")), sorted(
        Doctor.objects.values_list("user__email", "specialty")
    )


def test_seed_demo_creates_the_contract_accounts():
    call_command("seed_demo", stdout=None)

    roles = dict(User.objects.values_list("email", "role"))
    assert roles == {
        "admin@test.com": Role.ADMIN,
        "doctor@test.com": Role.DOCTOR,
        "doctor2@test.com": Role.DOCTOR,
        "patient@test.com": Role.PATIENT,
        "patient2@test.com": Role.PATIENT,
        "patient3@test.com": Role.PATIENT,
    }
    admin = User.objects.get(email="admin@test.com")
    assert admin.is_staff and admin.is_superuser
    rahman = Doctor.objects.get(user__email="doctor@test.com")
    assert (rahman.name, rahman.specialty) == ("Dr. Rahman", "Cardiology")
    for email in roles:
        assert authenticate(email=email, password="password123") is not None


def test_seed_demo_twice_changes_nothing():
    call_command("seed_demo")
    first = snapshot()
    call_command("seed_demo")
    assert snapshot() == first
