"""Users for a scratch database, written through the app's ORM, and their JWT access tokens.

Passwords are unusable (one precomputed value, no hashing): the bench mints access tokens with
rest_framework_simplejwt and the run's SECRET_KEY instead of logging in, so thousands of users
cost seconds.
"""

import datetime
import os
import sys

from servers import ROOT


def setup_django(env: dict) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    # The bench moves this process from one scratch database to the next (and drops each after):
    # plain connections, not the server's pool, which would keep lending ones to a dropped database.
    settings.DATABASES["default"].get("OPTIONS", {}).pop("pool", None)


def use_database(name: str) -> None:
    from django.db import connections

    connections["default"].close()
    connections["default"].settings_dict["NAME"] = name


def release() -> None:
    from django.db import connections

    connections.close_all()


def seed(*, patients: int, doctors: int, queue: bool) -> dict:
    """`patients` patients and `doctors` doctors; with `queue`, each patient has an active
    appointment today with the first doctor (so may join that queue).

    Returns {"patients": [(user_id, token)], "doctors": [(user_id, doctor_id, token)]}.
    """
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import Doctor, Role, User
    from appointments.models import Appointment, Status

    unusable = make_password(None)
    doctor_users = User.objects.bulk_create(
        User(email=f"doctor{i}@bench.test", name=f"Dr Bench {i}", role=Role.DOCTOR, password=unusable)
        for i in range(doctors)
    )
    profiles = Doctor.objects.bulk_create(Doctor(user=u, specialty="Bench") for u in doctor_users)
    patient_users = User.objects.bulk_create(
        (
            User(email=f"patient{i}@bench.test", name=f"Patient {i}", role=Role.PATIENT, password=unusable)
            for i in range(patients)
        ),
        batch_size=2000,
    )
    if queue:
        today = timezone.localdate()
        # One a second of the day: the (doctor, date, time) slot is unique, and 10,000 fit.
        Appointment.objects.bulk_create(
            (
                Appointment(
                    patient=p,
                    doctor=profiles[0],
                    date=today,
                    time=datetime.time(i // 3600, i // 60 % 60, i % 60),
                    queue_number=i + 1,
                    status=Status.CONFIRMED,
                )
                for i, p in enumerate(patient_users)
            ),
            batch_size=2000,
        )
    return {
        "patients": [(u.pk, str(AccessToken.for_user(u))) for u in patient_users],
        "doctors": [(d.user.pk, d.pk, str(AccessToken.for_user(d.user))) for d in profiles],
    }
