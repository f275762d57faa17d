from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken

from .emails import email_normalise
from .models import Doctor, User, phone_validator
from .services import user_register_validate


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=User._meta.get_field("email").max_length)
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    name = serializers.CharField(max_length=User._meta.get_field("name").max_length)

    def validate(self, attrs):
        # The rules are the portal sign-up's too; their Django ValidationError becomes field-keyed 400s.
        return user_register_validate(**attrs)


class LogoutSerializer(serializers.Serializer):
    refresh = serializers.CharField()

    def validate_refresh(self, value):
        try:
            token = RefreshToken(value)
            int(token[api_settings.USER_ID_CLAIM])
        except (TokenError, KeyError, TypeError, ValueError) as exc:
            message = gettext("This refresh token is invalid, expired or already used.")
            raise serializers.ValidationError(message) from exc
        return token


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name", "role"]
        read_only_fields = fields


class MeSerializer(serializers.ModelSerializer):
    doctor_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "email", "name", "role", "doctor_id", "phone", "language", "notify_email", "notify_sms"]
        read_only_fields = fields


# Bangla digits typed on a Bangla keyboard are the same number.
_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
# Separators people write inside a number; they carry nothing.
_PHONE_SEPARATORS = str.maketrans("", "", " -().")


class ProfileUpdateSerializer(serializers.Serializer):
    """`PATCH /api/me/`: only these keys are read; any other key (email, role, is_staff…) is ignored."""

    name = serializers.CharField(max_length=150)
    phone = serializers.CharField(max_length=32, allow_blank=True, allow_null=True, trim_whitespace=True)
    language = serializers.ChoiceField(choices=settings.LANGUAGES)
    notify_email = serializers.BooleanField()
    notify_sms = serializers.BooleanField()

    def validate_phone(self, value):
        if not value:
            return ""
        value = value.translate(_DIGITS).translate(_PHONE_SEPARATORS)
        try:
            phone_validator(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value


class DoctorSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="user.name", read_only=True)

    class Meta:
        model = Doctor
        fields = ["id", "name", "specialty"]
        read_only_fields = fields


class EmailTokenObtainPairSerializer(TokenObtainPairSerializer):
    """Emails are stored in one spelling (accounts.emails); accept them in any case."""

    def validate(self, attrs):
        attrs[self.username_field] = email_normalise(attrs.get(self.username_field, ""))
        return super().validate(attrs)


class RefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, with a token whose user was deleted refused as invalid (401), not a crash (500)."""

    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except User.DoesNotExist as exc:  # simplejwt's own look-up of the token's user
            raise InvalidToken() from exc  # the same answer as any other invalid token


class LanguageSerializer(serializers.Serializer):
    language = serializers.ChoiceField(choices=settings.LANGUAGES)
