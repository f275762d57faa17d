"""The video visit's HTTP API: the call's ICE servers and peer, the doctor's ring, and the call log.

Under the appointments' prefix, served from here (appointments/ does not import visits/).
"""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import CallEvent, Route
from .payloads import call_payload
from .selectors import call_open_to
from .services import call_event_record, call_ring

REFUSALS = {
    403: OpenApiResponse(description="Another user who may see the appointment (staff): only its patient and doctor."),
    404: OpenApiResponse(description="No such appointment, or one the caller may not see."),
    409: OpenApiResponse(
        description="Not a VIDEO appointment, not CONFIRMED, or outside its window "
        "(15 minutes before its time until 2 hours after, clinic time)."
    ),
}


class IceServerSerializer(serializers.Serializer):
    urls = serializers.ListField(child=serializers.CharField())
    username = serializers.CharField(
        required=False, help_text='TURN only: "<unix expiry>:<user id>" (coturn\'s shared-secret scheme).'
    )
    credential = serializers.CharField(required=False, help_text="TURN only: base64(HMAC-SHA1(secret, username)).")


class PeerSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.CharField()


class CallSerializer(serializers.Serializer):
    """Output only (visits.payloads builds it)."""

    ice_servers = IceServerSerializer(many=True)
    expires_at = serializers.DateTimeField(help_text="When the TURN credentials expire: fetch again before.")
    peer = PeerSerializer(help_text="The other participant.")


class CallEventSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=CallEvent.Kind.choices)
    route = serializers.ChoiceField(
        choices=Route.choices, required=False, help_text="With `connected`: whether the media goes through TURN."
    )


class CallView(APIView):
    @extend_schema(responses={200: CallSerializer, **REFUSALS})
    def get(self, request, pk: int):
        """The video call for the appointment's patient or doctor: ICE servers (fresh TURN credentials), the peer."""
        now = timezone.now()
        access = call_open_to(request.user, pk, now=now)
        return Response(call_payload(access, user_id=request.user.pk, now=now))


class CallRingView(APIView):
    @extend_schema(
        request=None,
        responses={
            200: inline_serializer("CallRing", fields={}),
            **REFUSALS,
            403: OpenApiResponse(description="Anyone but the appointment's doctor who may see it."),
            429: OpenApiResponse(description="Rung within the last 30 seconds: see Retry-After."),
        },
    )
    def post(self, request, pk: int):
        """The doctor rings the patient: a VIDEO_CALL notification (by SMS too when offline)."""
        call_ring(actor=request.user, appointment_id=pk)
        return Response({})


class CallEventsView(APIView):
    @extend_schema(
        request=CallEventSerializer,
        responses={204: None, 400: OpenApiResponse(description="Field-keyed errors"), **REFUSALS},
    )
    def post(self, request, pk: int):
        """The visit page reports what it saw, for the call log (no content): join, connected (with the route),
        failed, leave."""
        given = CallEventSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        call_event_record(actor=request.user, appointment_id=pk, event=data["event"], route=data.get("route", ""))
        return Response(status=status.HTTP_204_NO_CONTENT)
