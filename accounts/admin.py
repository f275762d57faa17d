from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .emails import email_normalise
from .models import Doctor, User
from .services import email_taken, user_deactivate, user_set_password, user_set_role


class NormalisedEmailMixin:
    """The address in its one spelling (accounts.emails), refused when another account's looks the same."""

    def clean_email(self):
        email = email_normalise(self.cleaned_data["email"])
        if email_taken(email, exclude_id=self.instance.pk):
            raise ValidationError(_("An account with this email already exists."), code="unique")
        return email


class EmailUserCreationForm(NormalisedEmailMixin, UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name", "role")


class EmailUserChangeForm(NormalisedEmailMixin, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class ServicePasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "change password" page, through `user_set_password` (which closes the user's sockets)."""

    def save(self, commit=True):
        usable = self.cleaned_data.get("set_usable_password", True)
        return user_set_password(user=self.user, password=self.cleaned_data["password1"] if usable else None)


class DoctorInline(admin.StackedInline):
    model = Doctor
    can_delete = False
    extra = 0


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = EmailUserChangeForm
    add_form = EmailUserCreationForm
    change_password_form = ServicePasswordChangeForm
    actions = ["deactivate_users"]
    ordering = ["email"]
    list_display = ["email", "name", "role", "is_staff", "is_active"]
    list_filter = ["role", "is_staff", "is_active"]
    search_fields = ["email", "name"]
    inlines = [DoctorInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name", "role", "language", "phone", "notify_email", "notify_sms")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "name", "role", "password1", "password2")}),)

    def save_model(self, request, obj, form, change):
        # Unticking "active" goes through the service, which also revokes tokens and closes sockets.
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        if deactivating:
            obj.is_active = True
        # The role and the staff flag are set together by their service (an Admin is always staff),
        # after the form's other fields. The add form has no staff box: the role decides.
        role, is_staff = obj.role, obj.is_staff if change else None
        if change:
            obj.role, obj.is_staff = form.initial["role"], form.initial["is_staff"]
        super().save_model(request, obj, form, change)
        user_set_role(user=obj, role=role, is_staff=is_staff)
        if deactivating:
            user_deactivate(user=obj)

    @admin.action(description=_("Deactivate selected users"), permissions=["change"])
    def deactivate_users(self, request, queryset):
        users = list(queryset.filter(is_active=True))
        for user in users:
            user_deactivate(user=user)
        self.message_user(
            request,
            ngettext("%(count)d user deactivated.", "%(count)d users deactivated.", len(users)) % {"count": len(users)},
            messages.SUCCESS,
        )


@admin.register(Doctor)
class DoctorAdmin(admin.ModelAdmin):
    list_display = ["name", "specialty"]
    search_fields = ["user__name", "user__email", "specialty"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
