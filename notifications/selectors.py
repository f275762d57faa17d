from .models import Notification, PushSubscription


def notifications_of(user, *, unread_only: bool = False):
    qs = Notification.objects.filter(user=user)
    return qs.filter(is_read=False) if unread_only else qs


def unread_count(user) -> int:
    return Notification.objects.filter(user=user, is_read=False).count()


def push_subscriptions_of(user):
    """The user's own Web Push subscriptions, newest first."""
    return PushSubscription.objects.filter(user=user)
