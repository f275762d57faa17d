from django.db import transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from notifications import stream

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


PROFILE_FIELDS = ("name", "phone", "language", "notify_email", "notify_sms")


@transaction.atomic
def user_update_profile(*, user: User, **changes) -> User:
    """Change the user's own profile: only PROFILE_FIELDS, already validated by the caller's form."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"not profile fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(user, field, value)
    if changes:
        user.save(update_fields=list(changes))
    return user


@transaction.atomic
def user_set_password(*, user: User, password: str) -> User:
    """Set a new password: every refresh token issued before is blacklisted (apps sign in again), and
    every open socket of the user closes (4401) once this commits.

    A portal caller keeps its own session with update_session_auth_hash; other sessions end.
    """
    user.set_password(password)
    user.save(update_fields=["password"])
    outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in outstanding], ignore_conflicts=True)
    stream.close_user_sockets(user.pk)
    return user
