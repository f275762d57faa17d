from rest_framework import serializers


class QueueSerializer(serializers.Serializer):
    doctor_id = serializers.IntegerField()
    date = serializers.DateField()
    current_queue = serializers.IntegerField()
    estimated_wait = serializers.IntegerField(help_text="Minutes per patient ahead.")
    waiting = serializers.IntegerField(help_text="Non-cancelled appointments of the day after the current number.")


class QueueUpdateSerializer(serializers.Serializer):
    current_queue = serializers.IntegerField(min_value=0)
    estimated_wait = serializers.IntegerField(
        min_value=0,
        max_value=600,
        required=False,
        allow_null=True,
        help_text="Minutes per patient; null returns to the estimate measured from recent consultations.",
    )
