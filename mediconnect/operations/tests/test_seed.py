import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from accounts.models import Doctor, Role, User
from appointments.models import Appointment
from notifications.models import Notification

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        sorted(User.objects.values_list("email", "role", "password", "is_staff", "is_superuser")),
        sorted(Doctor.objects.values_list("user__email", "specialty")),
        sorted(
            Appointment.objects.values_list("patient__email", "doctor__user__email", "date", "time", "queue_number")
        ),
        Notification.objects.count(),
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


def test_seed_demo_books_appointments_for_today_and_tomorrow_through_the_service():
    from django.utils import timezone

    call_command("seed_demo")
    today = timezone.localdate()
    rahman_today = Appointment.objects.filter(doctor__user__email="doctor@test.com", date=today).order_by(
        "queue_number"
    )
    assert [a.queue_number for a in rahman_today] == [1, 2, 3]
    assert Appointment.objects.filter(date__gt=today).exists()
    # booked like any booking: the patient was told
    assert Notification.objects.filter(user__email="patient@test.com", type="APPOINTMENT_CONFIRMED").exists()
