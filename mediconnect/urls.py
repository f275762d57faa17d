from django.contrib import admin
from django.urls import include, path

from accounts import password_views
from accounts import views as account_views
from mediconnect.operations.health import healthz
from mediconnect.operations.metrics import metrics_view
from mediconnect.pages import portal as portal_views
from mediconnect.pages import pwa
from mediconnect.pages.board_page import board_page
from mediconnect.pages.visit_page import visit_page

# An outage met outside a view (a middleware loading the session or the user) still answers 503.
handler500 = "mediconnect.operations.outage.server_error"
handler404 = "mediconnect.api.errors.not_found"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("password/change/", password_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", password_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password/reset/", password_views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", password_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        password_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password/reset/done/", password_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("login/", account_views.PortalLoginView.as_view(), name="login"),
    path("logout/", account_views.logout_view, name="logout"),
    path("signup/", account_views.signup_view, name="signup"),
    path("patient/", portal_views.patient_portal, name="patient-portal"),
    path("doctor/", portal_views.doctor_portal, name="doctor-portal"),
    path("settings/", portal_views.settings_page, name="portal-settings"),
    path("board/<slug:token>/", board_page, name="board"),
    # The installable app (mediconnect/pages/pwa.py): the worker must sit at the root for the site's scope.
    path("manifest.webmanifest", pwa.manifest, name="manifest"),
    path("sw.js", pwa.service_worker, name="service-worker"),
    path("offline/", pwa.offline, name="offline"),
    path("visit/<int:appointment_id>/", visit_page, name="visit"),
    path("", portal_views.home, name="home"),
    path("admin/login/", account_views.admin_login_view),  # throttled like /login/, then the admin's own
    path("admin/", admin.site.urls),
    path("api/", include("mediconnect.api.urls")),
]
