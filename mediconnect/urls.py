from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from appointments import views as portal_views

from .health import healthz

# An outage met outside a view (a middleware loading the session or the user) still answers 503.
handler500 = "mediconnect.outage.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("login/", account_views.login_view, name="login"),
    path("logout/", account_views.logout_view, name="logout"),
    path("patient/", portal_views.patient_portal, name="patient-portal"),
    path("doctor/", portal_views.doctor_portal, name="doctor-portal"),
    path("", portal_views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/", include("mediconnect.api_urls")),
]
