from django.contrib import admin, messages

from core.admin import ReadOnlyAdmin

from .models import Delivery, Event, Notification
from .services import notifications_mark_read


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "type", "title", "is_read"]
    list_filter = ["type", "is_read"]
    search_fields = ["user__name", "user__email", "title"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    # Read-only, `is_read` too: marking read goes through the service (the action below), which
    # tells the user's sockets, so every open bell follows.
    readonly_fields = ["user", "type", "title", "message", "related_id", "related_type", "is_read", "created_at"]
    actions = ["mark_read"]

    def has_add_permission(self, request):
        return False  # notifications come from the changes that cause them

    @admin.action(description="Mark selected notifications as read")
    def mark_read(self, request, queryset):
        unread = list(queryset.filter(is_read=False).select_related("user"))
        for notification in unread:
            notifications_mark_read(user=notification.user, notification_id=notification.pk)
        self.message_user(request, f"{len(unread)} notification(s) marked read.", messages.SUCCESS)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """The stored event stream, read-only: sockets replay it, and `manage.py prune` retires it."""

    list_display = ["user", "seq", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    readonly_fields = ["user", "seq", "type", "data", "created_at"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """Read-only: emails and SMS of important notifications, with their attempts; SEEN ones were not needed."""

    list_display = ["due_at", "channel", "address", "state", "attempts", "last_error", "sent_at"]
    list_filter = ["channel", "state"]
    search_fields = ["address"]
    date_hierarchy = "due_at"
