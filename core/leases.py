"""Claiming due rows for one worker at a time, with a lease (reminders, offline deliveries).

A row that some worker must act on carries `due_at`, `claim` and `claimed_until`. A worker claims
a batch of due rows in one short transaction (SELECT ... FOR UPDATE SKIP LOCKED, so two workers
never take the same row, then an UPDATE stamping its claim token and the lease's end) and acts on
each row later in a transaction of its own that first checks the claim is still its token. A
worker that dies after claiming holds its rows until the lease ends; then any worker takes them
again. A worker that was merely slow past its lease finds its claim taken and does nothing, so the
act (storing a notification, marking a row sent) happens once.
"""

import datetime
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet


def claim_due(
    due: QuerySet,
    *,
    now: datetime.datetime,
    limit: int = 100,
    on_claimed: Callable[[datetime.datetime], None] | None = None,
) -> tuple[str, list[int]]:
    """Claim up to `limit` rows of `due` (rows whose time has come) that no live lease holds.

    Returns the claim token and the claimed ids, oldest due first. `on_claimed(lease_end)` runs in
    the claiming transaction: the caller queues a wake-up for when the lease ends there, so that a
    worker killed right after its claim still leaves someone to take the rows again.
    """
    lease_end = now + datetime.timedelta(seconds=settings.TASK_LEASE_SECONDS)
    token = uuid.uuid4().hex
    with transaction.atomic():
        free = Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
        ids = list(
            due.filter(free)
            .select_for_update(skip_locked=True)
            .order_by("due_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            due.model.objects.filter(pk__in=ids).update(claim=token, claimed_until=lease_end)
            if on_claimed is not None:
                on_claimed(lease_end)
    return token, ids
