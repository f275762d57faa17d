from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .api import FileViewSet, PrescriptionListView, PrescriptionView, file_download_view

router = SimpleRouter()
router.register("files", FileViewSet, basename="file")

urlpatterns = [
    path("files/download/<str:token>/", file_download_view, name="file-download"),
    # Under the appointments' prefix, served from here: appointments/ does not import documents/.
    path("appointments/<int:pk>/prescription/", PrescriptionView.as_view(), name="appointment-prescription"),
    path("appointments/<int:pk>/prescriptions/", PrescriptionListView.as_view(), name="appointment-prescriptions"),
    path("", include(router.urls)),
]
