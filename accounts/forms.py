from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .emails import email_normalise
from .models import User
from .serializers import ProfileUpdateSerializer
from .services import PROFILE_FIELDS, user_register_validate


class EmailAuthenticationForm(AuthenticationForm):
    """Django's sign-in form (its `username` is the user's USERNAME_FIELD, the email), named `email` in the
    page as the contract wants; emails are stored in one spelling (accounts.emails), so any case signs in."""

    error_messages = {
        **AuthenticationForm.error_messages,
        # Not Django's "may be case-sensitive": the email is not.
        "invalid_login": _("That email and password do not match an active account."),
    }

    def add_prefix(self, field_name):
        return super().add_prefix("email" if field_name == "username" else field_name)

    def clean_username(self):
        return email_normalise(self.cleaned_data["username"])


class SignUpForm(forms.Form):
    """The portal's sign-up: the API's registration rules (`user_register_validate`), plus a repeated password."""

    name = forms.CharField(
        label=_("Full name"),
        max_length=User._meta.get_field("name").max_length,
        widget=forms.TextInput(attrs={"autocomplete": "name", "autofocus": True}),
    )
    email = forms.EmailField(
        label=_("Email"),
        max_length=User._meta.get_field("email").max_length,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label=_("Password again"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        data = super().clean()
        if "password" in data and "password2" in data and data["password"] != data["password2"]:
            self.add_error("password2", ValidationError(_("The two passwords differ."), code="password_mismatch"))
        if not self.errors:
            try:
                data.update(user_register_validate(email=data["email"], password=data["password"], name=data["name"]))
            except ValidationError as exc:
                self.add_error(None, exc)  # keyed by field: email, password
        return data

    def registration(self) -> dict:
        """The arguments of `user_register`."""
        return {key: self.cleaned_data[key] for key in ("email", "password", "name")}


class ProfileForm(forms.Form):
    """The portal's settings page: the fields of `PATCH /api/me/`, checked by that endpoint's own rules
    (`ProfileUpdateSerializer`: one set of rules for both); the caller saves with `user_update_profile`."""

    # Not required here: the serializer says what is wrong with an empty name, once.
    name = forms.CharField(label=_("Full name"), required=False, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    phone = forms.CharField(
        label=_("Mobile phone"),
        required=False,
        help_text=_("For text messages, e.g. +8801712345678."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES, widget=forms.RadioSelect)
    notify_email = forms.BooleanField(label=_("Email me when I am offline"), required=False)
    notify_sms = forms.BooleanField(label=_("Text me when I am offline"), required=False)

    @classmethod
    def for_user(cls, user, data=None) -> "ProfileForm":
        return cls(data, initial={field: getattr(user, field) for field in PROFILE_FIELDS})

    def clean(self):
        raw = {field: self.data.get(field, "") for field in ("name", "phone", "language")}
        raw.update({field: self.cleaned_data.get(field, False) for field in ("notify_email", "notify_sms")})
        serializer = ProfileUpdateSerializer(data=raw)
        if not serializer.is_valid():
            for field, messages in serializer.errors.items():
                for message in messages:
                    if message not in self.errors.get(field, []):
                        self.add_error(field if field in self.fields else None, str(message))
            return self.cleaned_data
        return dict(serializer.validated_data)
