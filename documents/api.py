"""The clinical documents' HTTP API (contract v1.2): /api/files/ and the signed download links."""

import django_filters
from django import forms
from django.conf import settings
from django.db import transaction
from django.http import FileResponse, HttpResponse, JsonResponse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import DomainError, NotAllowed, NotFound
from core.wirejson import MAX_INT

from .errors import TooLarge, UnsupportedFile
from .inspection import download_name
from .models import File
from .payloads import access_log_payload, file_payload, prescription_payload
from .prescriptions import InvalidPrescription, prescription_issue
from .selectors import file_access_log, files_visible_to, prescriptions_of
from .services import file_access_log_check, file_download, file_link, file_remove, file_too_large_message, file_upload
from .storage import documents_storage
from .uploads import upload_handlers


class FileSerializer(serializers.Serializer):
    """The file object of the contract (output only; `file_payload` builds it, for REST and events alike)."""

    id = serializers.IntegerField()
    patient = serializers.IntegerField()
    patient_name = serializers.CharField()
    appointment = serializers.IntegerField(allow_null=True)
    kind = serializers.ChoiceField(choices=File.Kind.choices)
    title = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    status = serializers.ChoiceField(choices=File.Status.choices)
    uploaded_by = serializers.IntegerField()
    uploaded_by_name = serializers.CharField()
    created_at = serializers.DateTimeField()

    def to_representation(self, instance):
        return file_payload(instance)


class FileUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.ChoiceField(choices=File.Kind.choices)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    appointment = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False, allow_null=True)
    patient = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False, allow_null=True)


class LinkSerializer(serializers.Serializer):
    url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class AccessLogEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    user = serializers.IntegerField(allow_null=True)
    user_name = serializers.CharField(allow_null=True)
    action = serializers.ChoiceField(choices=["UPLOAD", "LINK", "DOWNLOAD", "DELETE"])


class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_INT, **kwargs)


class FileFilter(django_filters.FilterSet):
    patient = IdFilter(field_name="patient_id")
    appointment = IdFilter(field_name="appointment_id")
    kind = django_filters.ChoiceFilter(choices=File.Kind.choices)

    class Meta:
        model = File
        fields = ["patient", "appointment", "kind"]


def _field_error(exc: DomainError, code: int) -> Response:
    return Response({exc.field or "detail": [exc.message]}, status=code)


@extend_schema_view(
    create=extend_schema(
        request={"multipart/form-data": FileUploadSerializer},
        responses={
            201: FileSerializer,
            400: OpenApiResponse(description="Field-keyed errors"),
            413: OpenApiResponse(description="Larger than FILE_MAX_BYTES"),
            415: OpenApiResponse(description="Not a PDF, JPEG, PNG or WEBP, or a PDF with active content"),
        },
    ),
    destroy=extend_schema(responses={204: None}),
)
class FileViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = FileSerializer
    filterset_class = FileFilter
    lookup_value_regex = "[0-9]+"
    parser_classes = [MultiPartParser, FormParser]
    _limiter = None

    def initialize_request(self, request, *args, **kwargs):
        drf_request = super().initialize_request(request, *args, **kwargs)
        if request.method == "POST" and self.action == "create":
            # Before anything reads the body: the bytes stream to disk and stop at FILE_MAX_BYTES.
            self._limiter, request.upload_handlers = upload_handlers(request)
        return drf_request

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return File.objects.none()
        return files_visible_to(self.request.user)

    def _too_large(self) -> bool:
        return self._limiter is not None and self._limiter.too_large

    def create(self, request, *args, **kwargs):
        data = request.data
        if self._too_large():
            return Response({"file": [file_too_large_message()]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        upload = FileUploadSerializer(data=data)
        upload.is_valid(raise_exception=True)
        fields = upload.validated_data
        try:
            file = file_upload(
                actor=request.user,
                upload=fields["file"],
                kind=fields["kind"],
                title=fields.get("title", ""),
                appointment_id=fields.get("appointment"),
                patient_id=fields.get("patient"),
            )
        except TooLarge as exc:
            return _field_error(exc, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except UnsupportedFile as exc:
            return _field_error(exc, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        return Response(file_payload(file), status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        file_remove(actor=request.user, file_id=self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: LinkSerializer, 409: OpenApiResponse(description="Not AVAILABLE")})
    @action(detail=True, methods=["post"], filter_backends=[])
    def link(self, request, pk=None):
        """A download link for the file, valid for FILE_LINK_SECONDS; one LINK entry in its access log."""
        file, url, expires_at = file_link(actor=request.user, file_id=self.get_object().pk)
        return Response(LinkSerializer({"url": url, "expires_at": expires_at}).data)

    @extend_schema(responses=AccessLogEntrySerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], url_path="access-log", pagination_class=None, filter_backends=[])
    def access_log(self, request, pk=None):
        """Who uploaded, linked, downloaded and removed the file, oldest first (still readable after removal)."""
        file = file_access_log_check(actor=request.user, file_id=int(pk))
        return Response(access_log_payload(file_access_log(file)))


@require_GET
def file_download_view(request, token: str):
    """GET of a signed link: the bytes as an attachment, to whoever holds a valid link; 403 otherwise."""
    try:
        with transaction.atomic():  # the DOWNLOAD entry only when the bytes can be opened
            file = file_download(token=token)
            name = download_name(file.original_name, file.content_type)
            accel = settings.FILES_X_ACCEL_PREFIX
            if accel:
                # nginx sends the bytes from its `internal` location over FILES_ROOT.
                response = HttpResponse(content_type=file.content_type)
                response["X-Accel-Redirect"] = f"{accel.rstrip('/')}/{file.content.name}"
                response["Content-Disposition"] = content_disposition_header(True, name)
            else:
                stream = documents_storage.open(file.content.name, "rb")
                response = FileResponse(stream, as_attachment=True, filename=name, content_type=file.content_type)
                if not response.has_header("Content-Length"):  # a stream from S3 has no size of its own
                    response["Content-Length"] = str(stream.size)
    except NotAllowed as exc:
        return JsonResponse({"detail": exc.message}, status=403)
    except FileNotFoundError:
        return JsonResponse({"detail": "This file's bytes are no longer kept."}, status=403)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


class PrescriptionItemSerializer(serializers.Serializer):
    medicine = serializers.CharField(max_length=200)
    dose = serializers.CharField(max_length=100, allow_blank=True)
    frequency = serializers.CharField(max_length=100, allow_blank=True)
    duration = serializers.CharField(max_length=100, allow_blank=True)
    instructions = serializers.CharField(max_length=300, allow_blank=True, required=False)


class PrescriptionInputSerializer(serializers.Serializer):
    """The request's shape, for the schema: the service checks the fields (documents.prescriptions)."""

    diagnosis = serializers.CharField(max_length=500, allow_blank=True, required=False)
    items = PrescriptionItemSerializer(many=True, min_length=1, max_length=30)
    advice = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    follow_up = serializers.DateField(required=False, allow_null=True, help_text="Not before today (clinic time).")


class PrescriptionSerializer(serializers.Serializer):
    """The prescription object of the contract (output only; `prescription_payload` builds it)."""

    id = serializers.IntegerField()
    appointment = serializers.IntegerField()
    version = serializers.IntegerField()
    diagnosis = serializers.CharField()
    items = PrescriptionItemSerializer(many=True)
    advice = serializers.CharField()
    follow_up = serializers.DateField(allow_null=True)
    file = serializers.IntegerField(help_text="The PDF: a file of kind PRESCRIPTION in the patient's files.")
    created_at = serializers.DateTimeField()

    def to_representation(self, instance):
        return prescription_payload(instance)


def _prescriptions(request, pk: int):
    prescriptions = prescriptions_of(request.user, pk)
    if prescriptions is None:
        raise NotFound(gettext("No such appointment."))
    return prescriptions


class PrescriptionView(APIView):
    """`/api/appointments/{id}/prescription/`: the latest version (GET), or a new one (POST, the doctor)."""

    @extend_schema(
        responses={200: PrescriptionSerializer, 404: OpenApiResponse(description="None yet, or no such appointment")}
    )
    def get(self, request, pk: int):
        prescription = _prescriptions(request, pk).last()
        if prescription is None:
            raise NotFound(gettext("This appointment has no prescription."))
        return Response(prescription_payload(prescription))

    @extend_schema(
        request=PrescriptionInputSerializer,
        responses={
            201: PrescriptionSerializer,
            400: OpenApiResponse(description="Field-keyed errors"),
            403: OpenApiResponse(description="Not the appointment's doctor"),
            404: OpenApiResponse(description="No such appointment"),
            409: OpenApiResponse(description="The appointment is not CONFIRMED or COMPLETED"),
        },
    )
    def post(self, request, pk: int):
        data = request.data
        if not isinstance(data, dict):
            _prescriptions(request, pk)  # an appointment the caller may not see is 404 whatever the body
            message = gettext("Invalid data. Expected a dictionary, but got %(type)s.") % {"type": type(data).__name__}
            return Response({"non_field_errors": [message]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            prescription = prescription_issue(
                actor=request.user,
                appointment_id=pk,
                diagnosis=data.get("diagnosis"),
                items=data.get("items"),
                advice=data.get("advice"),
                follow_up=data.get("follow_up"),
            )
        except InvalidPrescription as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        return Response(prescription_payload(prescription), status=status.HTTP_201_CREATED)


class PrescriptionListView(APIView):
    """`/api/appointments/{id}/prescriptions/`: every version, oldest first, not paginated."""

    @extend_schema(
        responses={200: PrescriptionSerializer(many=True), 404: OpenApiResponse(description="No such appointment")}
    )
    def get(self, request, pk: int):
        return Response([prescription_payload(p) for p in _prescriptions(request, pk)])
