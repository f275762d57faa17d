from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.views import TokenObtainPairView

from .models import Doctor
from .serializers import (
    DoctorSerializer,
    EmailTokenObtainPairSerializer,
    LanguageSerializer,
    MeSerializer,
    ProfileUpdateSerializer,
    RegisterSerializer,
    UserSerializer,
)
from .services import user_register, user_set_language, user_update_profile


class RegisterView(generics.GenericAPIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    serializer_class = RegisterSerializer

    @extend_schema(responses={201: UserSerializer})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_register(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenView(TokenObtainPairView):
    serializer_class = EmailTokenObtainPairSerializer


class MeView(APIView):
    """The signed-in user; PATCH changes their own profile (name, phone, language, notifications)."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(request=ProfileUpdateSerializer, responses={200: MeSerializer})
    def patch(self, request):
        serializer = ProfileUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = user_update_profile(user=request.user, **serializer.validated_data)
        response = Response(MeSerializer(user).data)
        if "language" in serializer.validated_data:
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.language, samesite="Lax")
        return response


class DoctorViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Doctor.objects.select_related("user").filter(user__is_active=True)
    serializer_class = DoctorSerializer


class SocketTokenView(APIView):
    """A short-lived access token for the portal's socket, for a user signed in with the session."""

    @extend_schema(
        responses=inline_serializer("SocketToken", {"access": serializers.CharField()}),
        description="Session-authenticated: the portals' pages get their WebSocket token here.",
    )
    def get(self, request):
        return Response({"access": str(AccessToken.for_user(request.user))})


class LanguageView(APIView):
    """Set the signed-in user's language (portal text and the notifications they are sent)."""

    @extend_schema(
        request=inline_serializer("Language", {"language": serializers.ChoiceField(settings.LANGUAGES)}),
        responses=MeSerializer,
    )
    def post(self, request):
        serializer = LanguageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_set_language(user=request.user, language=serializer.validated_data["language"])
        response = Response(MeSerializer(user).data)
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.language, samesite="Lax")
        return response
