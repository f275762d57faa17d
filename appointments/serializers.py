import datetime
from collections.abc import Mapping

from django.utils.translation import gettext
from rest_framework import serializers

from accounts.models import Doctor, Role, User

from .models import Appointment, Mode, Status
from .payloads import appointment_payload

TIME_FORMATS = ["%H:%M", "%H:%M:%S"]


def _clean_time(value: datetime.time) -> datetime.time:
    if value.second or value.microsecond:
        raise serializers.ValidationError(gettext("Use HH:MM."))
    return value


class AppointmentSerializer(serializers.ModelSerializer):
    """The appointment object of the contract: REST responses and `appointment_updated` events.

    Output (and the schema) only: a booking's input is AppointmentBookSerializer.
    """

    patient = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(role=Role.PATIENT, is_active=True), required=False
    )
    patient_name = serializers.CharField(source="patient.name", read_only=True)
    doctor = serializers.PrimaryKeyRelatedField(queryset=Doctor.objects.all())
    doctor_name = serializers.CharField(source="doctor.user.name", read_only=True)
    time = serializers.TimeField(format="%H:%M", input_formats=TIME_FORMATS)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    class Meta:
        model = Appointment
        fields = [
            "id",
            "patient",
            "patient_name",
            "doctor",
            "doctor_name",
            "date",
            "time",
            "status",
            "queue_number",
            "mode",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "queue_number", "created_at", "updated_at"]
        # The slot's uniqueness is checked by the booking service under a lock (409), not here.
        validators = []

    def to_representation(self, instance):
        # The same function builds the events' payload; DRF's per-field output was a fifth of a
        # booking's CPU (py-spy).
        return appointment_payload(instance)


class AppointmentBookSerializer(serializers.Serializer):
    """A booking's input: `POST /api/appointments/`.

    A plain Serializer: a ModelSerializer builds its fields from the model on every request. The
    doctor is an id here; the booking service reads the doctor once, under its row's lock, and
    answers an unknown or deactivated one with a 400 on `doctor`.
    """

    doctor = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    patient = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(role=Role.PATIENT, is_active=True), required=False
    )
    date = serializers.DateField()
    time = serializers.TimeField(input_formats=TIME_FORMATS)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    mode = serializers.ChoiceField(choices=Mode.choices, required=False, default=Mode.IN_PERSON)

    def to_internal_value(self, data):
        # A patient books for themselves whatever `patient` says (the service sees to it), so a
        # stale or foreign id there is no reason to refuse the booking.
        user = getattr(self.context.get("request"), "user", None)
        is_object = isinstance(data, Mapping)  # anything else is refused by DRF below, with a 400
        if is_object and user is not None and user.role == Role.PATIENT and not user.is_admin and "patient" in data:
            data = {key: value for key, value in data.items() if key != "patient"}
        return super().to_internal_value(data)

    def validate_time(self, value):
        return _clean_time(value)


class AppointmentChangeSerializer(serializers.Serializer):
    """What PATCH/PUT may change: the status, the date and time (a reschedule) and/or the mode."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    date = serializers.DateField(required=False)
    time = serializers.TimeField(required=False, input_formats=TIME_FORMATS)

    def validate_time(self, value):
        return _clean_time(value)
