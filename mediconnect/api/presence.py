from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import presence


class IsClinicAdmin(permissions.BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_admin)


class PresenceView(APIView):
    permission_classes = [IsClinicAdmin]

    @extend_schema(responses=inline_serializer("Presence", {"connected_users": serializers.IntegerField()}))
    def get(self, request):
        return Response({"connected_users": presence.backend().connected_users()})


class UserPresenceView(APIView):
    permission_classes = [IsClinicAdmin]

    @extend_schema(
        operation_id="presence_user_retrieve",
        responses=inline_serializer(
            "UserPresence", {"user_id": serializers.IntegerField(), "online": serializers.BooleanField()}
        ),
    )
    def get(self, request, user_id: int):
        return Response({"user_id": user_id, "online": presence.backend().is_online(user_id)})
