import hashlib
import json

import django_filters
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import doctor_by_id

from .models import Appointment, Status
from .payloads import appointment_history_payload
from .selectors import appointment_history, appointments_visible_to, free_slots
from .serializers import AppointmentBookSerializer, AppointmentChangeSerializer, AppointmentSerializer
from .services import (
    REASON,
    appointment_book,
    appointment_cancel,
    appointment_change,
    idempotency_record_claim,
    idempotency_record_complete,
)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Repeating a request with the same key returns the first response and books nothing new.",
)


class HistoryEntrySerializer(serializers.Serializer):
    """One change in an appointment's audit trail (schema only: the payload function builds it)."""

    at = serializers.DateTimeField()
    actor = serializers.IntegerField(allow_null=True, help_text="The user who made the change; null: the system.")
    actor_name = serializers.CharField(allow_null=True)
    changes = serializers.DictField(
        child=serializers.ListField(min_length=2, max_length=2),
        help_text="Each changed field as [old, new]; the first entry (the booking) has every field it set, "
        "from null. Values as in the appointment object.",
    )


class AppointmentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Status.choices)
    date = django_filters.DateFilter()

    class Meta:
        model = Appointment
        fields = ["status", "date"]


@extend_schema_view(
    create=extend_schema(
        parameters=[IDEMPOTENCY_HEADER], request=AppointmentBookSerializer, responses={201: AppointmentSerializer}
    ),
    partial_update=extend_schema(request=AppointmentChangeSerializer, responses=AppointmentSerializer),
    update=extend_schema(request=AppointmentChangeSerializer, responses=AppointmentSerializer),
    destroy=extend_schema(responses={200: AppointmentSerializer}, description="Cancels; the row stays."),
)
class AppointmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = AppointmentSerializer
    filterset_class = AppointmentFilter
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Appointment.objects.none()
        return appointments_visible_to(self.request.user)

    def create(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if not key:
            return self._book(request)
        if len(key) > 255:
            raise ValidationError({"idempotency_key": [gettext("At most 255 characters.")]})
        fingerprint = hashlib.sha256(json.dumps(request.data, sort_keys=True, default=str).encode()).hexdigest()
        with transaction.atomic():  # a refused booking rolls its claim of the key back: the key stays usable
            record, first = idempotency_record_claim(user=request.user, key=key, fingerprint=fingerprint)
            if not first:
                return Response(
                    self._replayed_body(request, record.response_status, record.response_body),
                    status=record.response_status,
                    headers={"Idempotent-Replayed": "true"},
                )
            response = self._book(request)
            idempotency_record_complete(record=record, status=response.status_code, body=response.data)
            return response

    def _replayed_body(self, request, status_code: int, body):
        """The first response again. A booking's reason was not stored: the repeat (same fingerprint) carries it."""
        if status_code == status.HTTP_201_CREATED and isinstance(body, dict) and REASON in body:
            body = {**body, REASON: self.get_serializer().fields[REASON].run_validation(request.data.get(REASON, ""))}
        return body

    def _book(self, request):
        serializer = AppointmentBookSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        appointment = appointment_book(
            actor=request.user,
            doctor=data["doctor"],
            date=data["date"],
            time=data["time"],
            reason=data.get("reason", ""),
            patient=data.get("patient"),
            mode=data["mode"],
        )
        return Response(self.get_serializer(appointment).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        appointment = self.get_object()
        change = AppointmentChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        appointment = appointment_change(actor=request.user, appointment=appointment, **change.validated_data)
        return Response(self.get_serializer(appointment).data)

    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        appointment = appointment_cancel(actor=request.user, appointment=self.get_object())
        return Response(self.get_serializer(appointment).data)

    @extend_schema(responses=HistoryEntrySerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request, pk=None):
        """Every change of the appointment, oldest first: who, when, which fields from what to what."""
        return Response(appointment_history_payload(appointment_history(self.get_object())))


class SlotsQuerySerializer(serializers.Serializer):
    date = serializers.DateField()


class SlotSerializer(serializers.Serializer):
    time = serializers.TimeField(format="%H:%M")
    available = serializers.BooleanField()


class DaySlotsSerializer(serializers.Serializer):
    doctor = serializers.IntegerField()
    date = serializers.DateField()
    slots = SlotSerializer(many=True)


class DoctorSlotsView(APIView):
    """The doctor's working-hours grid for a day, each time free or taken.

    Working hours are advisory in v1: a booking off the grid is still accepted.
    """

    @extend_schema(
        parameters=[OpenApiParameter("date", OpenApiTypes.DATE, required=True, description="YYYY-MM-DD")],
        responses=DaySlotsSerializer,
    )
    def get(self, request, doctor_id: int):
        doctor = doctor_by_id(doctor_id)
        query = SlotsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        date = query.validated_data["date"]
        hours = settings.CLINIC_HOURS
        slots = free_slots(
            doctor_id=doctor.pk, date=date, start=hours["start"], end=hours["end"], step_minutes=hours["slot_minutes"]
        )
        return Response({"doctor": doctor.pk, "date": date.isoformat(), "slots": slots})
