from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core import outbox
from core.errors import InvalidInput

from .emails import email_lookalike_key, email_normalise
from .models import Role, User
from .signals import credentials_revoked


def email_taken(email: str, *, exclude_id: int | None = None) -> bool:
    """An account has this address, or one that only looks the same (accounts.emails)."""
    users = User.objects.filter(email_key=email_lookalike_key(email))
    return (users.exclude(pk=exclude_id) if exclude_id else users).exists()


def user_register_validate(*, email: str, password: str, name: str) -> dict:
    """The self-registration rules (API and portal sign-up): a free email, a password Django's validators accept.

    Returns the cleaned values for `user_register`; raises a ValidationError keyed by field.
    """
    email = email_normalise(email)
    errors = {}
    if email_taken(email):
        errors["email"] = [ValidationError(_("An account with this email already exists."), code="unique")]
    try:
        validate_password(password, user=User(email=email, name=name))
    except ValidationError as exc:
        errors["password"] = exc.error_list
    if errors:
        raise ValidationError(errors)
    return {"email": email, "password": password, "name": name}


@transaction.atomic
def user_register(*, email: str, password: str, name: str) -> User:
    """Self-registration: always a patient. Input checked by `user_register_validate`; an email taken
    meanwhile (two sign-ups at once) is refused here by the unique constraint."""
    try:
        with transaction.atomic():
            return User.objects.create_user(email, password, name=name, role=Role.PATIENT)
    except IntegrityError as exc:
        raise InvalidInput(gettext("An account with this email already exists."), field="email") from exc


@transaction.atomic
def user_set_language(*, user: User, language: str) -> User:
    """The language of the user's portal and of the notifications stored for them from now on."""
    user.language = language
    user.save(update_fields=["language"])
    return user


@transaction.atomic
def user_logout(*, user_id: int) -> None:
    """Sign a user out: close every open socket of the user (4401) after commit. The caller ends what
    signed in: the API's logout blacklists its refresh token, the portal's view ends the session."""
    outbox.close_user_sockets(user_id)


@transaction.atomic
def user_deactivate(*, user: User) -> User:
    """Deactivate an account (staff only): no more sign-ins or refreshes, and its open sockets close (4401)."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    credentials_revoked.send(sender=User, user=user)
    outbox.close_user_sockets(user.pk)
    return user


@transaction.atomic
def user_set_role(*, user: User, role: str, is_staff: bool | None = None) -> User:
    """Set a user's role and staff flag together (staff only): the ADMIN role is always staff; another role
    is staff only when asked (a doctor who also runs the clinic). `is_staff=None` keeps the flag, except
    that it follows the role into and out of ADMIN. When anything changed, the user's open sockets close
    (4401): they reconnect with the new rights."""
    if role not in Role.values:
        raise InvalidInput(gettext("No such role."), field="role")
    if is_staff is None:
        is_staff = user.is_staff if Role.ADMIN not in (role, user.role) else role == Role.ADMIN
    is_staff = is_staff or role == Role.ADMIN
    if (user.role, user.is_staff) == (role, is_staff):
        return user
    user.role, user.is_staff = role, is_staff
    user.save(update_fields=["role", "is_staff"])
    outbox.close_user_sockets(user.pk)
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
def user_set_password(*, user: User, password: str | None) -> User:
    """Set a user's password (None: an unusable one) from every path: their own change, a reset, the admin.

    Refresh tokens issued before are revoked (`credentials_revoked`) and every open socket closes (4401); sessions other
    than one the caller keeps with `update_session_auth_hash` end by Django's session hash. The
    password must already have passed the validators (the calling form's job).
    """
    user.set_password(password)
    user.save(update_fields=["password"])
    credentials_revoked.send(sender=User, user=user)
    outbox.close_user_sockets(user.pk)
    return user
