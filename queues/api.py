from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import doctor_by_id
from core.errors import NotFound

from .selectors import board_by_token, check_can_run_queue, may_watch_queue, queue_state
from .serializers import BoardSerializer, QueueSerializer, QueueUpdateSerializer
from .services import board_queues, queue_call_next, queue_snapshot, queue_update


class QueueView(APIView):
    def _doctor(self, request, doctor_id):
        doctor = doctor_by_id(doctor_id)
        if not may_watch_queue(request.user, doctor):
            raise NotFound(gettext("No such queue."))
        return doctor

    @extend_schema(responses=QueueSerializer)
    def get(self, request, doctor_id: int):
        return Response(queue_snapshot(queue_state(doctor_id=self._doctor(request, doctor_id).pk)))

    @extend_schema(request=QueueUpdateSerializer, responses=QueueSerializer)
    def post(self, request, doctor_id: int):
        doctor = doctor_by_id(doctor_id)
        check_can_run_queue(request.user, doctor)  # refused before its input is looked at
        serializer = QueueUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = queue_update(actor=request.user, doctor=doctor, **serializer.validated_data)
        return Response(queue_snapshot(row))


class QueueNextView(APIView):
    @extend_schema(request=None, responses=QueueSerializer)
    def post(self, request, doctor_id: int):
        row = queue_call_next(actor=request.user, doctor=doctor_by_id(doctor_id))
        return Response(queue_snapshot(row))


class BoardView(APIView):
    """A display board's queues, for the waiting-room screen: no login, the secret token is the key."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses=BoardSerializer,
        auth=[],
        parameters=[
            OpenApiParameter(
                "token",
                str,
                OpenApiParameter.PATH,
                pattern="^[A-Za-z0-9_-]{1,64}$",
                description="The board's secret, from its URL.",
            )
        ],
    )
    def get(self, request, token: str):
        board = board_by_token(token)
        if board is None:
            raise NotFound(gettext("No such board."))
        return Response({"name": board.name, "queues": board_queues(board=board)})
