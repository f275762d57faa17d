from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status, throttling, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied, Throttled
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from .selectors import active_doctors
from .serializers import (
    DoctorSerializer,
    EmailTokenObtainPairSerializer,
    LanguageSerializer,
    LogoutSerializer,
    MeSerializer,
    ProfileUpdateSerializer,
    RefreshSerializer,
    RegisterSerializer,
    UserSerializer,
)
from .services import user_logout, user_register, user_set_language, user_update_profile
from .throttling import LoginAttempt, register_retry_after

TOKEN_PAIR = inline_serializer("TokenPair", {"access": serializers.CharField(), "refresh": serializers.CharField()})
DETAIL = inline_serializer("AuthErrorDetail", {"detail": serializers.CharField()})
FIELD_ERRORS = OpenApiResponse(OpenApiTypes.OBJECT, description="Field-keyed errors.")
THROTTLED = OpenApiResponse(DETAIL, description="Too many attempts; `Retry-After` says how many seconds to wait.")


class RegisterThrottle(throttling.BaseThrottle):
    """REGISTER_RATE per client address, counted with the portal's sign-up page."""

    def allow_request(self, request, view):
        self.retry_after = register_retry_after(request) if request.method == "POST" else None
        return self.retry_after is None

    def wait(self):
        return self.retry_after


class RegisterView(generics.GenericAPIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    serializer_class = RegisterSerializer
    throttle_classes = [RegisterThrottle]

    @extend_schema(responses={201: UserSerializer, 400: FIELD_ERRORS, 429: THROTTLED})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_register(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenView(TokenObtainPairView):
    """Sign in; refused with 429 while the email or the client address has too many recent failures."""

    serializer_class = EmailTokenObtainPairSerializer

    @extend_schema(
        responses={
            200: TOKEN_PAIR,
            400: FIELD_ERRORS,
            401: DETAIL,
            429: THROTTLED,
        }
    )
    def post(self, request, *args, **kwargs):
        email = request.data.get("email") if hasattr(request.data, "get") else None
        attempt = LoginAttempt(request, email)
        retry_after = attempt.retry_after()
        if retry_after is None:
            try:
                response = super().post(request, *args, **kwargs)
            except AuthenticationFailed:
                attempt.failed()  # wrong credentials or an inactive account
                raise
            retry_after = attempt.retry_after()  # the limit may have been reached while this one was checked
            if retry_after is None:
                return response
        raise Throttled(wait=retry_after, detail=gettext("Too many failed sign-ins. Try again later."))


class RefreshView(TokenRefreshView):
    """A new access token (and a rotated refresh token) for a refresh token; an invalid, used or
    orphaned one is 401."""

    serializer_class = RefreshSerializer


class LogoutView(generics.GenericAPIView):
    """Sign out a client: its refresh token is blacklisted and the user's sockets close (4401).

    The refresh token is the credential, so a client whose access token has expired can still sign out.
    """

    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    serializer_class = LogoutSerializer

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="`{}`"), 400: FIELD_ERRORS})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refresh = serializer.validated_data["refresh"]
        with transaction.atomic():
            refresh.blacklist()
            user_logout(user_id=int(refresh[api_settings.USER_ID_CLAIM]))
        return Response({})


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
    queryset = active_doctors()
    serializer_class = DoctorSerializer
    lookup_value_regex = "[0-9]+"


class IsSessionUser(permissions.IsAuthenticated):
    """Signed in with the portal's session. A Bearer caller is refused: an access token must not mint
    fresh access tokens, or a stolen one would renew itself past refresh rotation and blacklisting."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if not isinstance(request.successful_authenticator, SessionAuthentication):
            raise PermissionDenied(gettext("This endpoint serves the portal's session only."))
        return True


class SocketTokenView(APIView):
    """A short-lived access token for the portal's socket, for a user signed in with the session."""

    permission_classes = [IsSessionUser]

    @extend_schema(
        responses={
            200: inline_serializer("SocketToken", {"access": serializers.CharField()}),
            401: DETAIL,
            403: OpenApiResponse(DETAIL, description="Not the portal's session (a Bearer caller)."),
        },
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
