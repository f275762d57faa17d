from django.contrib import admin

from .models import Event, Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "type", "title", "is_read"]
    list_filter = ["type", "is_read"]
    search_fields = ["user__name", "user__email", "title"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    readonly_fields = ["user", "type", "title", "message", "related_id", "related_type", "created_at"]

    def has_add_permission(self, request):
        return False  # notifications come from the changes that cause them


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["user", "seq", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    readonly_fields = ["user", "seq", "type", "data", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
