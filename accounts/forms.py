from django import forms
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import User
from .services import user_register_validate


class EmailLoginForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, request=None, *args, **kwargs):
        self.request = request
        self.user = None
        super().__init__(*args, **kwargs)

    def clean(self):
        email = self.cleaned_data.get("email")
        password = self.cleaned_data.get("password")
        if email and password:
            self.user = authenticate(self.request, email=email.lower(), password=password)
            if self.user is None:
                raise forms.ValidationError(
                    _("That email and password do not match an active account."), code="invalid_login"
                )
        return self.cleaned_data


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
