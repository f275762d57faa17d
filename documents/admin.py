from django.contrib import admin

from core.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import AccessLog, File, Prescription, PrescriptionItem
from .selectors import files_visible_to


class AccessLogInline(ReadOnlyInline):
    """The file's access log, oldest first: append-only, here as everywhere."""

    model = AccessLog
    fields = readonly_fields = ["at", "user", "action"]
    ordering = ["at", "id"]


@admin.register(File)
class FileAdmin(ReadOnlyAdmin):
    """Every file, removed ones too (the clinic's records), read-only: files change through the API's services.

    The bytes are not offered here: they leave only through a signed link.
    """

    list_display = ["id", "created_at", "patient", "kind", "status", "content_type", "size", "removed_at"]
    list_filter = ["kind", "status", ("removed_at", admin.EmptyFieldListFilter)]
    search_fields = ["patient__name", "patient__email"]
    date_hierarchy = "created_at"
    list_select_related = ["patient"]
    # Not `content`: its widget would ask the storage for a public URL, which it has none of.
    fields = readonly_fields = [
        "patient",
        "appointment",
        "kind",
        "title",
        "original_name",
        "content_type",
        "size",
        "status",
        "uploaded_by",
        "created_at",
        "scan_attempts",
        "removed_at",
        "removed_by",
        "purged_at",
    ]
    inlines = [AccessLogInline]

    def get_queryset(self, request):
        return files_visible_to(request.user, include_removed=True)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_admin


@admin.register(AccessLog)
class AccessLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "file", "user", "action"]
    list_filter = ["action"]
    list_select_related = ["file", "user"]
    readonly_fields = ["file", "user", "action", "at"]


class PrescriptionItemInline(ReadOnlyInline):
    model = PrescriptionItem
    fields = readonly_fields = ["position", "medicine", "dose", "frequency", "duration", "instructions"]
    ordering = ["position"]


@admin.register(Prescription)
class PrescriptionAdmin(ReadOnlyAdmin):
    """Every version of every prescription, read-only: prescriptions are issued through the API's service, and a
    correction is the next version."""

    list_display = ["id", "created_at", "appointment", "version", "created_by", "file"]
    search_fields = ["appointment__patient__name", "appointment__patient__email"]
    date_hierarchy = "created_at"
    list_select_related = ["appointment", "created_by", "file"]
    fields = readonly_fields = [
        "appointment",
        "version",
        "diagnosis",
        "advice",
        "follow_up",
        "file",
        "created_by",
        "created_at",
    ]
    inlines = [PrescriptionItemInline]

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_admin
