import itertools

from accounts.models import Doctor, Role, User

PASSWORD = "Str0ng-pass-123"
_seq = itertools.count(1)


def make_user(*, email: str | None = None, name: str | None = None, role: str = Role.PATIENT, **extra) -> User:
    n = next(_seq)
    return User.objects.create_user(
        email or f"user{n}@example.com", PASSWORD, name=name or f"User {n}", role=role, **extra
    )


def make_doctor(*, email: str | None = None, name: str | None = None, specialty: str = "General") -> Doctor:
    user = make_user(email=email, name=name, role=Role.DOCTOR)
    return Doctor.objects.create(user=user, specialty=specialty)
