from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Doctor, Role, User

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
        self.stdout.write(f"seed_demo: {created} account(s) created, {len(ACCOUNTS) - created} already present.")
