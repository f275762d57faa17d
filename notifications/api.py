from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from . import webpush
from .models import Notification, PushSubscription
from .selectors import notifications_of, push_subscriptions_of, unread_count
from .serializers import (
    NotificationSerializer,
    PushKeySerializer,
    PushSubscriptionSerializer,
    ReadAllSerializer,
    UnreadCountSerializer,
)
from .services import (
    notifications_mark_all_read,
    notifications_mark_read,
    push_subscription_add,
    push_subscription_delete,
)


class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = NotificationSerializer
    lookup_value_regex = "[0-9]+"  # any other id is no route: a 404 before the view

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        unread = self.request.query_params.get("unread", "").lower() in {"true", "1", "yes"}
        return notifications_of(self.request.user, unread_only=unread)

    @extend_schema(parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL, description="Only unread ones.")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses=UnreadCountSerializer)
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        return Response({"count": unread_count(request.user)})

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = notifications_mark_read(user=request.user, notification_id=int(pk))
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses=ReadAllSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        return Response({"updated": notifications_mark_all_read(user=request.user)})


class PushKeyView(APIView):
    """The VAPID application server key browsers subscribe with (503 while Web Push is not configured)."""

    @extend_schema(responses={200: PushKeySerializer, 503: OpenApiResponse(description="Web Push is not configured.")})
    def get(self, request):
        key = webpush.application_server_key()
        if key is None:
            return Response({"detail": gettext("Web Push is not configured.")}, status=503)
        return Response({"public_key": key})


class PushSubscriptionViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """The caller's Web Push subscriptions: add one (the same endpoint again: 200 the existing one), list, delete."""

    serializer_class = PushSubscriptionSerializer
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PushSubscription.objects.none()
        return push_subscriptions_of(self.request.user)

    @extend_schema(responses={201: PushSubscriptionSerializer, 200: PushSubscriptionSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription, created = push_subscription_add(
            user=request.user, endpoint=data["endpoint"], p256dh=data["keys"]["p256dh"], auth=data["keys"]["auth"]
        )
        return Response(PushSubscriptionSerializer(subscription).data, status=201 if created else 200)

    def destroy(self, request, *args, **kwargs):
        push_subscription_delete(user=request.user, subscription_id=int(kwargs["pk"]))
        return Response(status=204)
