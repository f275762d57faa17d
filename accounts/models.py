from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .emails import email_lookalike_key, email_normalise

# An international or national number as digits, with an optional leading +: 8 to 15 digits
# (E.164's longest), so both 01712345678 and +8801712345678 (Bangladesh) pass.
phone_validator = RegexValidator(
    r"^\+?[0-9]{8,15}$",
    _("Enter a phone number of 8 to 15 digits, optionally starting with +."),
    code="invalid_phone",
)


class Role(models.TextChoices):
    PATIENT = "PATIENT", "Patient"
    DOCTOR = "DOCTOR", "Doctor"
    ADMIN = "ADMIN", "Admin"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **fields):
        if not email:
            raise ValueError("An email is required.")
        user = self.model(email=email_normalise(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **fields):
        fields.setdefault("role", Role.PATIENT)
        fields.setdefault("is_staff", fields["role"] == Role.ADMIN)  # the flag follows the role (user_set_role)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email, password=None, **fields):
        fields.update(role=Role.ADMIN, is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)

    def get_by_natural_key(self, username):
        # Sign-in (Django's backends, simplejwt) finds the account by its address in its one spelling.
        return self.get(email=email_normalise(username))


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    # The address without what only changes its look (accounts.emails): a second account whose address
    # looks the same as this one is refused. Kept by save().
    email_key = models.CharField(max_length=254, db_index=True, editable=False, default="")
    name = models.CharField(max_length=150)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.PATIENT)
    language = models.CharField(
        max_length=8,
        choices=settings.LANGUAGES,
        default="en",
        help_text="Language of the portal and of stored notifications.",
    )
    phone = models.CharField(
        max_length=16,
        blank=True,
        validators=[phone_validator],
        help_text="For SMS notifications (when notify_sms is on).",
    )
    notify_email = models.BooleanField(default=True, help_text="Email notifications while offline.")
    notify_sms = models.BooleanField(default=False, help_text="SMS notifications while offline (needs a phone).")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.name or self.email

    def save(self, *args, **kwargs):
        self.email_key = email_lookalike_key(self.email)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_key"}
        super().save(*args, **kwargs)

    @property
    def is_admin(self) -> bool:
        """Clinic staff act with admin rights everywhere."""
        return self.role == Role.ADMIN or self.is_staff or self.is_superuser

    @property
    def doctor_id(self) -> int | None:
        if self.role != Role.DOCTOR:
            return None
        profile = getattr(self, "doctor_profile", None)
        return profile.pk if profile else None


class Doctor(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="doctor_profile")
    specialty = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["user__name"]

    def __str__(self):
        return self.user.name

    @property
    def name(self) -> str:
        return self.user.name
