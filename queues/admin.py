from django.contrib import admin, messages

from core.errors import DomainError

from .models import QueueDay
from .services import UNSET, queue_update


@admin.register(QueueDay)
class QueueDayAdmin(admin.ModelAdmin):
    list_display = ["date", "doctor", "current_queue", "estimated_wait", "updated_at"]
    list_filter = ["doctor", "date"]
    date_hierarchy = "date"
    list_select_related = ["doctor__user"]
    fields = ["doctor", "date", "current_queue", "estimated_wait"]

    def get_readonly_fields(self, request, obj=None):
        return ["doctor", "date"] if obj else []

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
        try:
            queue_update(
                actor=request.user,
                doctor=obj.doctor,
                date=obj.date,
                current_queue=obj.current_queue,
                estimated_wait=obj.estimated_wait if "estimated_wait" in form.changed_data else UNSET,
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
