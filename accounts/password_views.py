"""The portal's password pages: change (signed in) and reset by email, with Django's views and forms.

Both end in `user_set_password`, which also closes the user's open sockets; a change keeps the
session it was made in, a reset signs no one in.
"""

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.urls import reverse_lazy
from django.utils import translation
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_http_methods

from .emails import email_normalise
from .services import user_set_password

logger = logging.getLogger(__name__)

_get_or_post = method_decorator(require_http_methods(["GET", "POST"]), name="dispatch")


@_get_or_post
class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form):
        user = user_set_password(user=form.user, password=form.cleaned_data["new_password1"])
        update_session_auth_hash(self.request, user)
        return HttpResponseRedirect(self.get_success_url())


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"


def reset_limit_key(email: str) -> str:
    """The cache key counting one address's reset emails (hashed: no address in the cache)."""
    return "password-reset:" + hashlib.sha256(email_normalise(email).encode()).hexdigest()


def reset_email_allowed(email: str) -> bool:
    """At most PASSWORD_RESET_EMAILS_PER_HOUR reset emails to one address, so that the form cannot
    flood someone's mailbox. A cache that cannot be reached limits nobody."""
    limit = settings.PASSWORD_RESET_EMAILS_PER_HOUR
    key = reset_limit_key(email)
    try:
        cache.add(key, 0, timeout=3600)
        return cache.incr(key) <= limit
    except Exception:  # noqa: BLE001  (an unreachable cache must not refuse a reset)
        logger.warning("password reset limit not checked: cache unavailable")
        return True


class UserLanguagePasswordResetForm(PasswordResetForm):
    """Django's reset form; the email speaks the account's language, as its notifications do, and
    one address gets a bounded number of them. The page says the same either way."""

    def clean_email(self):
        # The account's one spelling, so that any spelling that signs in finds it (accounts.emails).
        return email_normalise(self.cleaned_data["email"])

    def save(self, *args, **kwargs):
        if reset_email_allowed(self.cleaned_data["email"]):
            super().save(*args, **kwargs)

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        language = getattr(context.get("user"), "language", None) or translation.get_language()
        with translation.override(language):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)


@_get_or_post
class PasswordResetView(auth_views.PasswordResetView):
    form_class = UserLanguagePasswordResetForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"


@_get_or_post
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        user_set_password(user=form.user, password=form.cleaned_data["new_password1"])
        # The link is spent: Django's token hashes the password, and the session copy goes too.
        self.request.session.pop(auth_views.INTERNAL_RESET_SESSION_TOKEN, None)
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
