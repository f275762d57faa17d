from django.utils.translation import gettext
from rest_framework import serializers

from . import webpush
from .models import Notification
from .payloads import notification_payload


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "type", "title", "message", "related_id", "related_type", "is_read", "created_at"]
        read_only_fields = fields

    def to_representation(self, instance):
        return notification_payload(instance)  # the same function builds `new_notification` events


class UnreadCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class ReadAllSerializer(serializers.Serializer):
    updated = serializers.IntegerField()


class PushKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(
        help_text="The VAPID application server key: base64url of the uncompressed P-256 point."
    )


class PushKeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(max_length=100, help_text="The browser's P-256 public key, base64url.")
    auth = serializers.CharField(max_length=40, help_text="The browser's 16-byte auth secret, base64url.")

    def validate_p256dh(self, value):
        try:
            raw = webpush.b64url_decode(value)
        except ValueError:
            raw = b""
        if not webpush.valid_p256_point(raw):
            raise serializers.ValidationError(gettext("Not a P-256 public key (base64url, 65 bytes)."))
        return value

    def validate_auth(self, value):
        try:
            raw = webpush.b64url_decode(value)
        except ValueError:
            raw = b""
        if len(raw) != 16:
            raise serializers.ValidationError(gettext("Not a 16-byte auth secret (base64url)."))
        return value


class PushSubscriptionSerializer(serializers.Serializer):
    """A browser's `PushSubscription.toJSON()` in; `{"id","endpoint","created_at"}` out. Validates, never writes."""

    id = serializers.IntegerField(read_only=True)
    endpoint = serializers.CharField(max_length=1024, trim_whitespace=False)
    keys = PushKeysSerializer(write_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    def validate_endpoint(self, value):
        problem = webpush.endpoint_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value
