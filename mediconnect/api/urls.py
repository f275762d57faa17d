from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts.api import (
    DoctorViewSet,
    LanguageView,
    LogoutView,
    MeView,
    RefreshView,
    RegisterView,
    SocketTokenView,
    TokenView,
)
from appointments.api import AppointmentViewSet, DoctorSlotsView
from mediconnect.api.presence import PresenceView, UserPresenceView
from notifications.api import NotificationViewSet, PushKeyView, PushSubscriptionViewSet
from queues.api import BoardView, QueueNextView, QueueView

router = DefaultRouter()
router.register("doctors", DoctorViewSet, basename="doctor")
router.register("appointments", AppointmentViewSet, basename="appointment")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("push/subscriptions", PushSubscriptionViewSet, basename="push-subscription")

urlpatterns = [
    path("auth/register/", RegisterView.as_view(), name="register"),
    path("auth/token/", TokenView.as_view(), name="token"),
    path("auth/token/refresh/", RefreshView.as_view(), name="token-refresh"),
    path("auth/logout/", LogoutView.as_view(), name="logout"),
    path("auth/ws-token/", SocketTokenView.as_view(), name="ws-token"),
    path("me/", MeView.as_view(), name="me"),
    path("me/language/", LanguageView.as_view(), name="me-language"),
    path("doctors/<int:doctor_id>/slots/", DoctorSlotsView.as_view(), name="doctor-slots"),
    path("queues/<int:doctor_id>/", QueueView.as_view(), name="queue"),
    path("queues/<int:doctor_id>/next/", QueueNextView.as_view(), name="queue-next"),
    path("boards/<slug:token>/", BoardView.as_view(), name="board-api"),
    path("push/key/", PushKeyView.as_view(), name="push-key"),
    path("presence/", PresenceView.as_view(), name="presence"),
    path("presence/<int:user_id>/", UserPresenceView.as_view(), name="user-presence"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view loads its start-up script from a URL instead of inline, as the CSP requires.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="drf_spectacular/swagger_ui_strict.html"),
        name="docs",
    ),
    path("", include("documents.urls")),
    path("", include("visits.urls")),
    path("", include(router.urls)),
]
