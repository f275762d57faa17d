from django.urls import path

from .api import CallEventsView, CallRingView, CallView

# Under the appointments' prefix, served from here: appointments/ does not import visits/.
urlpatterns = [
    path("appointments/<int:pk>/call/", CallView.as_view(), name="appointment-call"),
    path("appointments/<int:pk>/call/ring/", CallRingView.as_view(), name="appointment-call-ring"),
    path("appointments/<int:pk>/call/events/", CallEventsView.as_view(), name="appointment-call-events"),
]
