from django.db import transaction

from .models import Role, User


@transaction.atomic
def user_register(*, email: str, password: str, name: str) -> User:
    """Self-registration: always a patient."""
    return User.objects.create_user(email, password, name=name, role=Role.PATIENT)
