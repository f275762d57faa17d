from django.contrib.auth import login, logout
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from .forms import EmailLoginForm
from .models import Role


def home_for(user) -> str:
    """The page a user lands on after login."""
    if user.is_staff or user.role == Role.ADMIN:
        return "/admin/"
    if user.role == Role.DOCTOR:
        return "/doctor/"
    return "/patient/"


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def login_view(request):
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    safe_next = (
        next_url
        if url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        else ""
    )
    if request.user.is_authenticated and request.method == "GET":
        return redirect(safe_next or home_for(request.user))
    form = EmailLoginForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.user)
        return redirect(safe_next or home_for(form.user))
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/login.html", {"form": form, "next": safe_next}, status=status)


@require_http_methods(["GET", "POST"])
def logout_view(request):
    logout(request)
    return redirect("/login/")
