from collections.abc import Iterable

from django.db.models import Count

from .models import Notification


def notifications_of(user, *, unread_only: bool = False):
    qs = Notification.objects.filter(user=user)
    return qs.filter(is_read=False) if unread_only else qs


def unread_count(user) -> int:
    return Notification.objects.filter(user=user, is_read=False).count()


def unread_counts(user_ids: Iterable[int]) -> dict[int, int]:
    """Each user's unread count, in one query; a user with none unread is 0."""
    user_ids = set(user_ids)
    counts = dict.fromkeys(user_ids, 0)
    rows = (
        Notification.objects.filter(user_id__in=user_ids, is_read=False)
        .order_by()
        .values_list("user_id")
        .annotate(n=Count("pk"))
    )
    counts.update(rows)
    return counts
