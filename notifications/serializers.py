from rest_framework import serializers

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
