"""Offline delivery (contract v1.1): important notifications by email and SMS to users with no open socket.

`deliveries_plan` runs in the transaction that stores the notifications: for each one of an
OFFLINE_TYPES type whose user has no socket open (presence decides), it stores a `Delivery` per
channel the user wants, and queues a wake-up of the task worker in the same transaction. The
worker (`send_due_deliveries`) claims due deliveries with a lease (core.leases) and sends each; a
failure is retried later with a doubling delay, and never touches the stored notification.
"""

import datetime
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from django_tasks import task

from core.leases import claim_due

from . import sms
from .models import OFFLINE_TYPES, Delivery, Notification

logger = logging.getLogger(__name__)


def _online_among(user_ids: set[int]) -> set[int]:
    # Presence lives with the sockets (mediconnect.realtime.presence, above this package); the setting names
    # it, so no import runs back up. Unknown (Redis away or hung) counts as offline: a message too
    # many beats a cancellation nobody hears of.
    try:
        return import_string(settings.PRESENCE_CHECK)(user_ids)
    except Exception as exc:
        logger.warning("presence unknown (%s); delivering by email/SMS", type(exc).__name__)
        return set()


def _email_body(notification: Notification, language: str) -> str:
    with translation.override(language):
        footer = gettext("Open MediConnect to see your appointments.")
    return f"{notification.message}\n\n{footer}\n"


def deliveries_plan(notifications: list[Notification]) -> list[Delivery]:
    """Store the email and SMS deliveries of these just-stored notifications for users who are offline.

    Runs in the caller's transaction (notifications_create); the worker is woken in it too.
    """
    wanted = [
        n
        for n in notifications
        if n.type in OFFLINE_TYPES and (n.user.notify_email or (n.user.notify_sms and n.user.phone))
    ]
    if not wanted:
        return []
    online = _online_among({n.user_id for n in wanted})
    now = timezone.now()
    deliveries = []
    for notification in wanted:
        user = notification.user
        if notification.user_id in online:
            continue
        if user.notify_email and user.email:
            deliveries.append(
                Delivery(
                    notification=notification,
                    channel=Delivery.Channel.EMAIL,
                    address=user.email,
                    subject=notification.title,
                    body=_email_body(notification, user.language or "en"),
                    due_at=now,
                )
            )
        if user.notify_sms and user.phone:
            text = notification.sms_text or sms.fit_one_segment("{name}", name=notification.title)
            deliveries.append(
                Delivery(
                    notification=notification, channel=Delivery.Channel.SMS, address=user.phone, body=text, due_at=now
                )
            )
    if deliveries:
        Delivery.objects.bulk_create(deliveries)
        wake(now)
    return deliveries


def wake(at: datetime.datetime) -> None:
    """Queue a run of the delivery worker at `at` (in the caller's transaction: it exists iff the rows do)."""
    send_due_deliveries.using(run_after=at).enqueue()


def _send(delivery: Delivery) -> None:
    if delivery.channel == Delivery.Channel.EMAIL:
        send_mail(delivery.subject, delivery.body, None, [delivery.address], fail_silently=False)
    else:
        sms.backend().send(delivery.address, delivery.body)


def retry_delay(attempts: int) -> datetime.timedelta:
    """How long after its `attempts`-th failure a delivery is tried again: doubling from DELIVERY_RETRY_SECONDS."""
    return datetime.timedelta(seconds=settings.DELIVERY_RETRY_SECONDS * 2 ** max(0, attempts - 1))


def _send_one(delivery_id: int, token: str) -> bool:
    """Send one claimed delivery, if the claim is still ours; record the outcome. True when sent.

    The lease is renewed just before the send (if the claim is still ours), so a send that waits on
    its provider (EMAIL_TIMEOUT, the SMS backend's timeout: both under TASK_LEASE_SECONDS) is not
    taken by another worker meanwhile, however long the batch before it took.
    """
    lease_end = timezone.now() + datetime.timedelta(seconds=settings.TASK_LEASE_SECONDS)
    mine = Delivery.objects.filter(pk=delivery_id, claim=token, state=Delivery.State.PENDING)
    if not mine.update(claimed_until=lease_end):
        return False
    delivery = mine.first()
    if delivery is None:
        return False
    try:
        _send(delivery)
    except Exception as exc:
        attempts = delivery.attempts + 1
        now = timezone.now()
        give_up = attempts >= settings.DELIVERY_MAX_ATTEMPTS
        # The provider's error text may quote the message: keep its type only.
        logger.warning(
            "%s delivery %s failed (attempt %d): %s", delivery.channel, delivery.pk, attempts, type(exc).__name__
        )
        with transaction.atomic():
            updated = Delivery.objects.filter(pk=delivery.pk, claim=token).update(
                attempts=attempts,
                last_error=type(exc).__name__[:200],
                state=Delivery.State.FAILED if give_up else Delivery.State.PENDING,
                due_at=now + retry_delay(attempts),
                claim="",
                claimed_until=None,
            )
            if updated and not give_up:
                wake(now + retry_delay(attempts))
        return False
    Delivery.objects.filter(pk=delivery.pk, claim=token).update(
        state=Delivery.State.SENT, attempts=delivery.attempts + 1, sent_at=timezone.now(), claimed_until=None
    )
    return True


def deliveries_send_due(*, now: datetime.datetime | None = None, limit: int = 100) -> int:
    """Claim the deliveries whose time has come and send each; returns how many were sent (the worker's task)."""
    sent = 0
    while True:
        now_ = now or timezone.now()
        token, ids = claim_due(
            Delivery.objects.filter(state=Delivery.State.PENDING, due_at__lte=now_),
            now=now_,
            limit=limit,
            on_claimed=wake,
        )
        for delivery_id in ids:
            sent += _send_one(delivery_id, token)
        if len(ids) < limit or now is not None:
            return sent


@task()
def send_due_deliveries() -> int:
    """The worker's task: send the offline deliveries that are due."""
    return deliveries_send_due()
