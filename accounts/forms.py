from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .emails import email_normalise
from .models import User
from .services import user_register_validate


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
