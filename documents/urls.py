from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .api import FileViewSet, file_download_view

router = SimpleRouter()
router.register("files", FileViewSet, basename="file")

urlpatterns = [
    path("files/download/<str:token>/", file_download_view, name="file-download"),
    path("", include(router.urls)),
]
