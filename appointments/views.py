"""Server-rendered portals."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from accounts.models import Role
from accounts.views import home_for


def home(request):
    if request.user.is_authenticated:
        return redirect(home_for(request.user))
    return redirect("/login/")


@login_required
def patient_portal(request):
    if request.user.role != Role.PATIENT:
        raise PermissionDenied
    return render(request, "portals/patient.html")


@login_required
def doctor_portal(request):
    if request.user.role != Role.DOCTOR:
        raise PermissionDenied
    return render(request, "portals/doctor.html")
