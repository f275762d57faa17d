from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from core.errors import DomainError

from .models import Board, QueueDay
from .services import UNSET, board_doctors_changed, board_rotate_token, check_queue_update, queue_update


class QueueDayAdminForm(forms.ModelForm):
    """Shows a refused update next to its field, with queue_update's own checks (made again when it saves)."""

    actor = None  # the staff user, set by QueueDayAdmin.get_form

    class Meta:
        model = QueueDay
        fields = ["doctor", "date", "current_queue", "estimated_wait"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            check_queue_update(
                actor=self.actor,
                doctor=self.instance.doctor if self.instance.pk else data["doctor"],
                current_queue=data["current_queue"],
                estimated_wait=data["estimated_wait"],
            )
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


@admin.register(QueueDay)
class QueueDayAdmin(admin.ModelAdmin):
    """A doctor's day, set by staff through queue_update only: one write, one push of the queue."""

    form = QueueDayAdminForm
    list_display = ["date", "doctor", "current_queue", "estimated_wait", "updated_at"]
    list_filter = ["doctor", "date"]
    date_hierarchy = "date"
    list_select_related = ["doctor__user"]
    fields = ["doctor", "date", "current_queue", "estimated_wait"]

    def get_readonly_fields(self, request, obj=None):
        return ["doctor", "date"] if obj else []

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user
        return form

    def save_model(self, request, obj, form, change):
        # The form ran the service's checks; the service makes them again and does the only write
        # (the row made on first use, in the admin's one transaction) and the one push.
        row = queue_update(
            actor=request.user,
            doctor=obj.doctor,
            date=obj.date,
            current_queue=obj.current_queue,
            estimated_wait=obj.estimated_wait if not change or "estimated_wait" in form.changed_data else UNSET,
        )
        obj.pk, obj.updated_at = row.pk, row.updated_at  # for the admin's log entry and redirect


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    """Display boards: name and doctors are edited here; the secret token is made for it and rotated by button."""

    list_display = ["name", "doctor_list", "board_url", "created"]
    search_fields = ["name", "doctors__user__name"]
    filter_horizontal = ["doctors"]
    fields = ["name", "doctors", "board_url", "created"]
    readonly_fields = ["board_url", "created"]
    actions = ["rotate_tokens"]
    change_form_template = "admin/queues/board/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("doctors__user")

    @admin.display(description="Doctors")
    def doctor_list(self, obj):
        return ", ".join(doctor.name for doctor in obj.doctors.all())

    @admin.display(description="Board URL")
    def board_url(self, obj):
        if obj is None or obj.pk is None:
            return "Made when the board is saved."
        url = reverse("board", args=[obj.token])
        return format_html('<a href="{}" target="_blank" rel="noopener" data-testid="board-url">{}</a>', url, url)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change and "doctors" in form.changed_data:
            board_doctors_changed(board=form.instance)

    @admin.action(description="Rotate the token (the old URL stops working)")
    def rotate_tokens(self, request, queryset):
        for board in queryset:
            board_rotate_token(board=board)
        self.message_user(request, f"New token for {queryset.count()} board(s); give the screens the new URL.")

    def get_urls(self):
        rotate = self.admin_site.admin_view(self.rotate_view)
        return [path("<int:board_id>/rotate-token/", rotate, name="queues_board_rotate"), *super().get_urls()]

    def rotate_view(self, request, board_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        board = get_object_or_404(Board, pk=board_id)
        if not self.has_change_permission(request, board):
            raise PermissionDenied
        board_rotate_token(board=board)
        self.message_user(request, f"{board.name}: new token; the old URL no longer works.")
        return HttpResponseRedirect(reverse("admin:queues_board_change", args=[board.pk]))
