"""Offline delivery (contract v1.1): important notifications by email and SMS to users with no open socket.

`deliveries_plan` runs in the transaction that stores the notifications: for each one of an
OFFLINE_TYPES type (or an SMS_ONLY_TYPES one: the queue's alerts, a doctor's video call, by SMS
only), it stores a `Delivery` per channel the user wants, and queues a wake-up of the
task worker in the same transaction. It asks no server for presence while the change holds its
locks: only the in-process store, which knows its sockets without a round trip (no Redis: one
server process, whose sockets get what it pushes after commit), spares a user the rows.

The worker (`send_due_deliveries`) claims due deliveries with a lease (core.leases) and asks the
presence store, once per batch, when each user's sockets were last alive. "Online" means a socket
alive after the notification was made: a Redis entry only says a process vouched for the user
within the last TTL, and a process killed since leaves its users' entries behind, so a
cancellation made then would reach nobody. So a delivery whose user's sockets were alive after it
(a heartbeat later than its creation and SEEN_MARGIN_SECONDS) is dropped as SEEN; one whose user
still has an entry but no such heartbeat yet waits until two heartbeats have passed (a live
process refreshes its users every PRESENCE_HEARTBEAT_SECONDS) and is decided again; every other
is sent. A failure is retried later with a doubling delay, and never touches the stored notification.
"""

import datetime
import logging
import math

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django_tasks import task

from core.leases import claim_due

from . import presence, sms
from .models import OFFLINE_TYPES, SMS_ONLY_TYPES, Delivery, Notification

logger = logging.getLogger(__name__)

# How much later than a notification a heartbeat must be to show a socket that was there for it:
# the push leaves after commit (within PUSH_TIMEOUT_SECONDS), and server clocks differ a little.
SEEN_MARGIN_SECONDS = 2.0
BY_SMS = OFFLINE_TYPES | SMS_ONLY_TYPES


def _decision_time(notification_created: datetime.datetime) -> datetime.datetime:
    """When a user with a presence entry but no heartbeat since the notification counts as gone."""
    wait = 2 * presence.HEARTBEAT_SECONDS + SEEN_MARGIN_SECONDS
    return notification_created + datetime.timedelta(seconds=wait)


def _sightings(user_ids: set[int]) -> presence.Sightings:
    # Unknown (Redis away or hung) counts as unseen: a message too many beats a cancellation nobody hears of.
    try:
        return presence.backend().sightings(user_ids)
    except Exception as exc:
        logger.warning("presence unknown (%s); delivering by email/SMS", type(exc).__name__)
        return presence.Sightings({}, set())


def _email_body(notification: Notification, language: str) -> str:
    with translation.override(language):
        footer = gettext("Open MediConnect to see your appointments.")
    return f"{notification.message}\n\n{footer}\n"


def _by_sms(user) -> bool:
    return bool(user.notify_sms and user.phone)


def deliveries_plan(notifications: list[Notification]) -> list[Delivery]:
    """Store the email and SMS deliveries of these just-stored notifications; the worker decides who needs them.

    Runs in the caller's transaction (notifications_create), which holds the change's locks: it
    asks presence nothing that takes a round trip. The worker is woken in it too.
    """
    wanted = [
        n
        for n in notifications
        if (n.type in OFFLINE_TYPES and n.user.notify_email) or (n.type in BY_SMS and _by_sms(n.user))
    ]
    if not wanted:
        return []
    online = presence.backend().sure_online({n.user_id for n in wanted})
    now = timezone.now()
    deliveries = []
    for notification in wanted:
        user = notification.user
        if notification.user_id in online:
            continue
        if notification.type in OFFLINE_TYPES and user.notify_email and user.email:
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
        if _by_sms(user):
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


def _unseen(ids: list[int], token: str, now: datetime.datetime) -> list[int]:
    """Of these claimed deliveries, the ones to send now; the others are dropped as SEEN or put off.

    One look at presence for the batch. A delivery whose user's socket was alive after its
    notification is SEEN; one whose user has a presence entry but no heartbeat since waits (claim
    released, a wake-up queued) until `_decision_time`, when no heartbeat means its process is gone.
    """
    if not ids:
        return []
    claimed = Delivery.objects.filter(pk__in=ids, claim=token)
    rows = list(claimed.values_list("pk", "notification__user_id", "notification__created_at"))
    seen = _sightings({user_id for _, user_id, _ in rows})
    send, dropped, later = [], [], {}
    for pk, user_id, created in rows:
        if seen.last_alive.get(user_id, -math.inf) > created.timestamp() + SEEN_MARGIN_SECONDS:
            dropped.append(pk)
        elif user_id in seen.online and now < _decision_time(created):
            # To the next whole second: one wake-up for the notifications of the same moment.
            at = _decision_time(created).replace(microsecond=0) + datetime.timedelta(seconds=1)
            later.setdefault(at, []).append(pk)
        else:
            send.append(pk)
    if dropped:
        Delivery.objects.filter(pk__in=dropped, claim=token).update(
            state=Delivery.State.SEEN, claim="", claimed_until=None
        )
    for at, pks in later.items():
        with transaction.atomic():
            if Delivery.objects.filter(pk__in=pks, claim=token).update(due_at=at, claim="", claimed_until=None):
                wake(at)
    return send


def deliveries_send_due(*, now: datetime.datetime | None = None, limit: int = 100) -> int:
    """Claim the deliveries whose time has come and send each whose user has not seen it; returns how many were sent.

    The worker's task. Presence is asked outside any transaction, once per claimed batch.
    """
    sent = 0
    while True:
        now_ = now or timezone.now()
        token, ids = claim_due(
            Delivery.objects.filter(state=Delivery.State.PENDING, due_at__lte=now_),
            now=now_,
            limit=limit,
            on_claimed=wake,
        )
        for delivery_id in _unseen(ids, token, now_):
            sent += _send_one(delivery_id, token)
        if len(ids) < limit or now is not None:
            return sent


@task()
def send_due_deliveries() -> int:
    """The worker's task: send the offline deliveries that are due."""
    return deliveries_send_due()
