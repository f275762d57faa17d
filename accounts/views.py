from django.conf import settings
from django.contrib import admin
from django.contrib.auth import login, logout
from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS
from django.shortcuts import redirect, render
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import DomainError

from .forms import EmailAuthenticationForm, SignUpForm
from .models import Role
from .services import user_register
from .throttling import LoginAttempt, register_retry_after


def home_for(user) -> str:
    """The page a user lands on after login: the wiring floor's settings name each role's portal."""
    return settings.PORTAL_FOR_ROLE[Role.ADMIN if user.is_admin else user.role]


def _wait_message(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return ngettext(
        "Too many attempts. Please try again in %(minutes)d minute.",
        "Too many attempts. Please try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


def _throttled(request, template: str, context: dict, retry_after: int):
    """The page again, with 429, the wait in words and in Retry-After."""
    response = render(request, template, {**context, "throttled": _wait_message(retry_after)}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


class PortalLoginView(LoginView):
    """Django's sign-in (safe `next`, CSRF, no caching), by email, under the failure limits: 429 with
    Retry-After while this email or client address has too many recent failures, even for the right password."""

    form_class = EmailAuthenticationForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return home_for(self.request.user)

    def post(self, request, *args, **kwargs):
        self.attempt = LoginAttempt(request, request.POST.get("email"))
        retry_after = self.attempt.retry_after()
        if retry_after is not None:
            return self.throttled(retry_after)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        retry_after = self.attempt.retry_after()  # the limit may have been reached while this one was checked
        if retry_after is not None:
            return self.throttled(retry_after)
        return super().form_valid(form)

    def form_invalid(self, form):
        if form.has_error(NON_FIELD_ERRORS, "invalid_login"):  # wrong credentials or an inactive account
            self.attempt.failed()
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def throttled(self, retry_after: int):
        form = self.form_class(self.request, initial={"username": self.request.POST.get("email", "")})
        return _throttled(self.request, self.template_name, self.get_context_data(form=form), retry_after)


@sensitive_post_parameters("password")
def admin_login_view(request, **kwargs):
    """The admin's sign-in, under the same failure limits as /login/ (its failures count there too)."""
    if request.method != "POST":
        return admin.site.login(request, **kwargs)
    attempt = LoginAttempt(request, request.POST.get("username"))
    retry_after = attempt.retry_after()
    if retry_after is not None:
        form = EmailAuthenticationForm(request, initial={"username": request.POST.get("username", "")})
        return _throttled(request, "registration/login.html", {"form": form, "next": "/admin/"}, retry_after)
    response = admin.site.login(request, **kwargs)
    form = (getattr(response, "context_data", None) or {}).get("form")
    if form is not None and form.has_error(NON_FIELD_ERRORS, "invalid_login"):
        attempt.failed()
    return response


@require_POST
def logout_view(request):
    """POST only (with CSRF): a link or an image elsewhere must not sign anyone out. The user's
    sockets close too (accounts.receivers, on Django's user_logged_out)."""
    logout(request)
    return redirect("/login/")


@sensitive_post_parameters("password", "password2")
@require_http_methods(["GET", "POST"])
def signup_view(request):
    """A new patient's account, by the API's rules and REGISTER_RATE; signed in at once, on to their portal."""
    if request.user.is_authenticated and request.method == "GET":
        return redirect(home_for(request.user))
    if request.method == "POST":
        retry_after = register_retry_after(request)
        if retry_after is not None:
            form = SignUpForm(initial={k: request.POST.get(k, "") for k in ("name", "email")})
            return _throttled(request, "registration/signup.html", {"form": form}, retry_after)
    form = SignUpForm(data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_register(**form.registration())
        except DomainError as exc:  # the email was taken a moment ago
            form.add_error(exc.field, exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(home_for(user))
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)
