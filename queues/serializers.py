from rest_framework import serializers

from .services import MAX_ESTIMATED_WAIT, MAX_QUEUE_NUMBER


class QueueSerializer(serializers.Serializer):
    doctor_id = serializers.IntegerField()
    date = serializers.DateField()
    current_queue = serializers.IntegerField()
    estimated_wait = serializers.IntegerField(help_text="Minutes per patient ahead.")
    waiting = serializers.IntegerField(help_text="Non-cancelled appointments of the day after the current number.")
    waiting_numbers = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Queue numbers of the day's still-active (PENDING/CONFIRMED) appointments after the current "
        "number, ascending. A patient's people ahead: how many of them are below their own number.",
    )


class QueueUpdateSerializer(serializers.Serializer):
    current_queue = serializers.IntegerField(min_value=0, max_value=MAX_QUEUE_NUMBER)
    estimated_wait = serializers.IntegerField(
        min_value=0,
        max_value=MAX_ESTIMATED_WAIT,
        required=False,
        allow_null=True,
        help_text="Minutes per patient; null returns to the estimate measured from recent consultations.",
    )


class BoardQueueSerializer(QueueSerializer):
    doctor_name = serializers.CharField()
    next = serializers.ListField(child=serializers.IntegerField(), help_text="The first three of `waiting_numbers`.")


class BoardSerializer(serializers.Serializer):
    name = serializers.CharField()
    queues = BoardQueueSerializer(many=True)
