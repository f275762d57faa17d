"""The call log in the admin, read-only: the visit pages write it through the API's services.

The appointment's page shows its call log as an inline. appointments/ cannot import visits/, so the
appointment's admin is registered again here as a subclass with the inline added (Django's public
register/unregister; visits comes after appointments in INSTALLED_APPS, so its admin loads later).
"""

from django.contrib import admin
from django.utils.html import format_html_join

from appointments.admin import AppointmentAdmin
from appointments.models import Appointment
from core.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import CallEvent, CallLog

LOG_FIELDS = ["calls", "rung_at", "started_at", "connected_at", "route", "failed", "ended_at", "duration"]


def _duration(log: CallLog) -> str:
    seconds = log.duration_seconds
    return "" if seconds is None else f"{seconds // 60} min {seconds % 60:02d} s"


class CallEventInline(ReadOnlyInline):
    model = CallEvent
    fields = readonly_fields = ["at", "user", "event", "route"]
    ordering = ["at", "id"]


class CallLogInline(ReadOnlyInline):
    """The appointment's call log, with who joined and left when."""

    model = CallLog
    fields = readonly_fields = [*LOG_FIELDS, "events"]
    verbose_name_plural = "video call"

    @admin.display(description="duration")
    def duration(self, log):
        return _duration(log)

    @admin.display(description="who joined and left when")
    def events(self, log):
        rows = log.events.select_related("user").order_by("at", "id")
        return format_html_join(
            "",
            "<div>{} {} {} {}</div>",
            ((f"{e.at:%Y-%m-%d %H:%M:%S}", e.user.name, e.event, e.route) for e in rows),
        )


@admin.register(CallLog)
class CallLogAdmin(ReadOnlyAdmin):
    list_display = ["appointment", "started_at", "connected_at", "route", "failed", "ended_at", "duration", "calls"]
    list_filter = ["route", "failed"]
    date_hierarchy = "started_at"
    list_select_related = ["appointment"]
    fields = readonly_fields = ["appointment", *LOG_FIELDS]
    inlines = [CallEventInline]

    @admin.display(description="duration")
    def duration(self, log):
        return _duration(log)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_admin


class VideoAppointmentAdmin(AppointmentAdmin):
    def get_inlines(self, request, obj):
        # Shown, never submitted: a POST of the change form saves through the services and carries
        # nothing for the call log, so no formset is built for it (nor its management form required).
        inlines = list(super().get_inlines(request, obj))
        if obj is not None and request.method in ("GET", "HEAD"):
            inlines.append(CallLogInline)
        return inlines


admin.site.unregister(Appointment)
admin.site.register(Appointment, VideoAppointmentAdmin)
