import datetime

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Doctor, Role, User
from appointments.models import Appointment
from appointments.services import appointment_book
from queues.models import Board

PASSWORD = "password123"
ACCOUNTS = [
    # email, name, role, specialty
    ("admin@test.com", "Clinic Admin", Role.ADMIN, None),
    ("doctor@test.com", "Dr. Rahman", Role.DOCTOR, "Cardiology"),
    ("doctor2@test.com", "Dr. Akter", Role.DOCTOR, "General Medicine"),
    ("patient@test.com", "Karim Hossain", Role.PATIENT, None),
    ("patient2@test.com", "Fatima Begum", Role.PATIENT, None),
    ("patient3@test.com", "Rafiq Islam", Role.PATIENT, None),
]


# patient, doctor, days from today, time
APPOINTMENTS = [
    ("patient@test.com", "doctor@test.com", 0, "10:00"),
    ("patient2@test.com", "doctor@test.com", 0, "10:15"),
    ("patient3@test.com", "doctor@test.com", 0, "10:30"),
    ("patient@test.com", "doctor2@test.com", 1, "11:00"),
    ("patient2@test.com", "doctor@test.com", 1, "09:30"),
]

# The demo's waiting-room display board, at /board/demo-board/.
DEMO_BOARD = ("demo-board", "Waiting room", ["doctor@test.com", "doctor2@test.com"])


class Command(BaseCommand):
    help = "Create the demo accounts (and demo appointments). Running it again changes nothing."

    @transaction.atomic
    def handle(self, *args, **options):
        created = 0
        for email, name, role, specialty in ACCOUNTS:
            user = User.objects.filter(email=email).first()
            if user is None:
                if role == Role.ADMIN:
                    user = User.objects.create_superuser(email, PASSWORD, name=name)
                else:
                    user = User.objects.create_user(email, PASSWORD, name=name, role=role)
                created += 1
            if role == Role.DOCTOR:
                Doctor.objects.get_or_create(user=user, defaults={"specialty": specialty})
        booked = self._appointments()
        self._board()
        self.stdout.write(
            f"seed_demo: {created} account(s) created, {len(ACCOUNTS) - created} already present; "
            f"{booked} demo appointment(s) booked."
        )

    def _appointments(self) -> int:
        admin = User.objects.get(email="admin@test.com")
        today, booked = timezone.localdate(), 0
        for patient_email, doctor_email, days, at in APPOINTMENTS:
            patient = User.objects.get(email=patient_email)
            doctor = Doctor.objects.get(user__email=doctor_email)
            date, time = today + datetime.timedelta(days=days), datetime.time.fromisoformat(at)
            if Appointment.objects.filter(patient=patient, doctor=doctor, date=date, time=time).exists():
                continue
            if Appointment.objects.holding_slots().filter(doctor=doctor, date=date, time=time).exists():
                continue  # someone else holds that slot now
            appointment_book(actor=admin, patient=patient, doctor=doctor, date=date, time=time)
            booked += 1
        return booked

    def _board(self) -> None:
        token, name, doctor_emails = DEMO_BOARD
        board, _ = Board.objects.get_or_create(token=token, defaults={"name": name})
        board.doctors.add(*Doctor.objects.filter(user__email__in=doctor_emails))
