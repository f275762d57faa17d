from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext
from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from .models import Doctor, User, phone_validator


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    name = serializers.CharField(max_length=150)

    def validate_email(self, value):
        value = value.lower()
        if User.objects.filter(email__iexact=value).exists():
            raise serializers.ValidationError(gettext("An account with this email already exists."))
        return value

    def validate(self, attrs):
        candidate = User(email=attrs["email"], name=attrs["name"])
        try:
            validate_password(attrs["password"], user=candidate)
        except Exception as exc:  # Django's ValidationError → a field error on password
            raise serializers.ValidationError({"password": list(getattr(exc, "messages", [str(exc)]))}) from exc
        return attrs


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
    """Emails are stored lower-case; accept them in any case."""

    def validate(self, attrs):
        attrs[self.username_field] = attrs.get(self.username_field, "").lower()
        return super().validate(attrs)


class LanguageSerializer(serializers.Serializer):
    language = serializers.ChoiceField(choices=settings.LANGUAGES)
