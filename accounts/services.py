from django.db import transaction

from .models import Role, User


@transaction.atomic
def user_register(*, email: str, password: str, name: str) -> User:
    """Self-registration: always a patient."""
    return User.objects.create_user(email, password, name=name, role=Role.PATIENT)


@transaction.atomic
def user_set_language(*, user: User, language: str) -> User:
    """The language of the user's portal and of the notifications stored for them from now on."""
    user.language = language
    user.save(update_fields=["language"])
    return user
