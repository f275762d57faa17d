from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.utils.translation import gettext
from simple_history.admin import SimpleHistoryAdmin

from core.admin import ReadOnlyAdmin
from core.errors import Conflict, DomainError

from .models import Appointment, IdempotencyRecord, Mode, Reminder, Status
from .services import (
    appointment_book,
    appointment_change,
    appointment_set_reason,
    appointment_transition,
    check_booking,
    check_reschedule,
    check_slot_free,
    check_transition,
)


class AppointmentAdminForm(forms.ModelForm):
    """Shows a refused change next to its field, with the same checks the services make.

    The services check again under their locks when the admin saves.
    """

    actor = None  # the staff user, set by AppointmentAdmin.get_form

    class Meta:
        model = Appointment
        fields = ["patient", "doctor", "date", "time", "status", "mode", "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "mode" in self.fields:
            self.fields["mode"].required = False  # left out: unchanged (a new booking: in person)

    def clean_mode(self):
        return self.cleaned_data.get("mode") or (self.instance.mode if self.instance.pk else Mode.IN_PERSON)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            if self.instance.pk is None:
                check_booking(actor=self.actor, doctor=data["doctor"], date=data["date"], patient=data["patient"])
                check_slot_free(doctor_id=data["doctor"].pk, date=data["date"], time=data["time"])
            else:
                original = Appointment.objects.select_related("doctor").get(pk=self.instance.pk)
                moved = (data["date"], data["time"]) != (original.date, original.time)
                if moved and check_reschedule(
                    actor=self.actor, appointment=original, date=data["date"], time=data["time"]
                ):
                    check_slot_free(
                        doctor_id=original.doctor_id, date=data["date"], time=data["time"], exclude_id=original.pk
                    )
                if data["mode"] != original.mode and not original.is_active:
                    raise Conflict(
                        gettext("A %(status)s appointment's mode cannot change.") % {"status": original.status},
                        field="mode",
                    )
                if data["status"] != original.status:
                    check_transition(appointment=original, actor=self.actor, to_status=data["status"])
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


@admin.register(Appointment)
class AppointmentAdmin(SimpleHistoryAdmin):
    """Every write goes through the services; "History" shows the audit trail, read-only."""

    form = AppointmentAdminForm
    list_display = ["id", "date", "time", "queue_number", "doctor", "patient", "status", "mode"]
    list_filter = ["status", "mode", "doctor", "date"]
    search_fields = ["patient__name", "patient__email"]
    date_hierarchy = "date"
    list_select_related = ["patient", "doctor__user"]
    autocomplete_fields = ["patient"]
    readonly_fields = ["queue_number", "completed_at", "created_at", "updated_at"]
    actions = ["confirm", "cancel", "complete", "no_show"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user
        return form

    def get_readonly_fields(self, request, obj=None):
        if obj is None:  # a new booking: CONFIRMED, numbered by the service
            return [*self.readonly_fields, "status"]
        return [*self.readonly_fields, "patient", "doctor"]

    def save_model(self, request, obj, form, change):
        # Every change goes through the services, so the admin makes the same notifications.
        data = form.cleaned_data
        try:
            if not change:
                booked = appointment_book(
                    actor=request.user,
                    patient=data["patient"],
                    doctor=data["doctor"],
                    date=data["date"],
                    time=data["time"],
                    reason=data.get("reason", ""),
                    mode=data["mode"],
                )
                obj.pk = booked.pk
                obj.refresh_from_db()
                return
            original = Appointment.objects.get(pk=obj.pk)
            moved = (data["date"], data["time"]) != (original.date, original.time)
            with transaction.atomic():  # one form, one change: all of it or none
                appointment = appointment_change(
                    actor=request.user,
                    appointment=original,
                    status=data["status"] if data["status"] != original.status else None,
                    date=data["date"] if moved else None,
                    time=data["time"] if moved else None,
                    mode=data["mode"] if data["mode"] != original.mode else None,
                )
                appointment_set_reason(actor=request.user, appointment=appointment, reason=data.get("reason", ""))
        except DomainError as exc:
            raise ValidationError(exc.message) from exc

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The form has checked the change already; this is for one that lost a race meanwhile.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # A past version is shown, never saved back: a revert would bypass the services' checks.
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _move(self, request, queryset, to_status: str):
        done, refused = 0, []
        # One transaction (each move a savepoint of it, so a refused one changes nothing): a doctor's
        # queue is pushed to its watchers once for the action, not once per row.
        with transaction.atomic():
            for appointment in queryset:
                try:
                    appointment_transition(actor=request.user, appointment=appointment, to_status=to_status)
                    done += 1
                except DomainError as exc:
                    refused.append(f"#{appointment.pk}: {exc.message}")
        if done:
            self.message_user(request, f"{done} appointment(s) moved to {to_status}.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not changed: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Confirm selected appointments")
    def confirm(self, request, queryset):
        self._move(request, queryset, Status.CONFIRMED)

    @admin.action(description="Cancel selected appointments")
    def cancel(self, request, queryset):
        self._move(request, queryset, Status.CANCELLED)

    @admin.action(description="Complete selected appointments")
    def complete(self, request, queryset):
        self._move(request, queryset, Status.COMPLETED)

    @admin.action(description="Mark selected appointments as no-show")
    def no_show(self, request, queryset):
        self._move(request, queryset, Status.NO_SHOW)

    def delete_model(self, request, obj):
        # Appointments are cancelled, never deleted: the history stays.
        appointment_transition(actor=request.user, appointment=obj, to_status=Status.CANCELLED)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["user", "key", "response_status", "created_at"]
    readonly_fields = ["user", "key", "fingerprint", "response_status", "response_body", "created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    """Read-only: the appointment's changes plan, move and drop reminders; the task worker sends them."""

    list_display = ["due_at", "appointment", "offset_seconds", "state", "sent_at"]
    list_filter = ["state"]
    list_select_related = ["appointment"]
    date_hierarchy = "due_at"
