"""Web Push (contract v1.2): every stored notification also goes to its user's browser subscriptions.

`push_plan` runs in the transaction that stores the notifications (notifications_create): one query
for the users' subscriptions and, when there are any, one `PushMessage` per notification and
subscription plus a wake-up of the task worker, all committed with the notifications. Nothing is
sent in the request: the worker (`send_due_pushes`) claims due messages with a lease (core.leases),
encrypts each (RFC 8291 aes128gcm, pywebpush + http-ece), signs a VAPID token (RFC 8292) and POSTs it.

Outcomes: 2xx → SENT (never sent again); 404/410 → the push service forgot the browser, the
subscription is deleted (its messages with it); 429, 5xx and network errors → tried again later
(PUSH_RETRY_SECONDS doubling, or the Retry-After the service asked for when longer), up to
PUSH_MAX_ATTEMPTS, then FAILED; another 4xx → FAILED at once (sending the same again cannot help).
One subscription's failure never holds up the others.

Endpoints are checked against server-side request forgery: https:// only, and the host must not be
a loopback, private, link-local, multicast, reserved or unspecified address, in any numeric form or
as a name resolving to one; at subscribe time, and again at send time (a name can be re-pointed),
where the request goes to the very address that was checked (`_PinnedAdapter`: the name is kept
for Host, SNI and the certificate), so no window is left between the check and the connection.
PUSH_ENDPOINT_ALLOW lists URL prefixes exempt from all of it (the tests' local receivers).

Logs name subscription and notification ids and HTTP statuses only: never a payload, title or body.
"""

import base64
import datetime
import email.utils
import functools
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections import defaultdict
from urllib.parse import urlsplit, urlunsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django_tasks import task
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush
from requests.adapters import HTTPAdapter

from core.leases import claim_due

from .models import Notification, NotificationType, PushMessage, PushSubscription

logger = logging.getLogger(__name__)

# The decrypted payload's size limit (contract: at most 3 KB); the body is cut to fit.
MAX_PAYLOAD_BYTES = 3000
# A push service's Retry-After is honoured up to this long.
MAX_RETRY_SECONDS = 3600
# A VAPID token is valid this long (RFC 8292 allows at most 24 h) and is signed again this long
# before it expires: one signature per push service origin and hour, not one per push.
VAPID_TOKEN_SECONDS = 12 * 3600
VAPID_RESIGN_SECONDS = 3600

QUEUE_TYPES = frozenset({NotificationType.QUEUE_CALLED, NotificationType.QUEUE_NEXT})
URGENT_TYPES = QUEUE_TYPES | {NotificationType.VIDEO_CALL}
QUEUE_TTL_SECONDS = 300  # a queue alert older than five minutes is of no use
DEFAULT_TTL_SECONDS = 86400


# Keys -------------------------------------------------------------------------------------------


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url, with or without padding; anything else (standard base64's + and /) is ValueError."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=4)
def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """The VAPID key from its setting: a PEM (PKCS#8 or SEC1), or the raw 32-byte scalar (or DER) in base64url."""
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text.strip())
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("VAPID_PRIVATE_KEY is not a PEM or base64url P-256 private key.") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ImproperlyConfigured("VAPID_PRIVATE_KEY must be a P-256 (prime256v1) key.")
    return key


def vapid_key() -> ec.EllipticCurvePrivateKey | None:
    """The configured VAPID private key, or None: Web Push is off."""
    text = settings.VAPID_PRIVATE_KEY
    return load_private_key(text) if text else None


def application_server_key() -> str | None:
    """The public key browsers subscribe with: the 65-byte uncompressed P-256 point in base64url."""
    key = vapid_key()
    if key is None:
        return None
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url_encode(point)


def generate_private_key_pem() -> str:
    """A new VAPID key as PKCS#8 PEM (`make run` keeps one; tests make one per run)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def valid_p256_point(raw: bytes) -> bool:
    if len(raw) != 65 or raw[0] != 4:
        return False
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        return False
    return True


# Endpoints (SSRF) ---------------------------------------------------------------------------------


def address_blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address a push must never reach: anything but a global unicast address.

    IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo's client) are judged by it too.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None]
        if any(inner is not None and address_blocked(inner) for inner in embedded):
            return True
    return (
        not address.is_global
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


class _NotAHost(ValueError):
    pass


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, in any form a resolver accepts (127.1, 2130706433,
    0x7f000001, 0177.0.0.1, [::1], …); None for a name; _NotAHost for digits that are no address."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0] if ":" in host else host)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9][0-9a-fA-FxX.]*", host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError as exc:
            raise _NotAHost(host) from exc
    return None


def _resolve(host: str, port: int) -> list[str]:
    """The addresses a name resolves to (a seam for the tests)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


def endpoint_allowed_by_setting(endpoint: str) -> bool:
    return any(endpoint.startswith(prefix) for prefix in settings.PUSH_ENDPOINT_ALLOW)


def endpoint_problem(endpoint: str) -> str | None:
    """Why a push must not go to `endpoint` (a message for the client), or None when it may.

    A name that does not resolve now is let through: the connection checks its address anyway.
    """
    if endpoint_allowed_by_setting(endpoint):
        return None
    try:
        parts = urlsplit(endpoint)
        port = parts.port or 443
    except ValueError:
        return gettext("Enter a valid URL.")
    if parts.scheme.lower() != "https":
        return gettext("The endpoint must be an https:// URL.")
    host = (parts.hostname or "").rstrip(".") if parts.hostname != "." else ""
    if not host or parts.username is not None or parts.password is not None or any(c.isspace() for c in endpoint):
        return gettext("Enter a valid URL.")
    blocked = gettext("The endpoint's host must be a public address.")
    try:
        literal = _literal_address(host)
    except _NotAHost:
        return gettext("Enter a valid URL.")
    if literal is not None:
        return blocked if address_blocked(literal) else None
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError):
        return None
    for text in addresses:
        try:
            if address_blocked(ipaddress.ip_address(text.split("%", 1)[0])):
                return blocked
        except ValueError:
            return blocked
    return None


class BlockedAddress(OSError):
    """A push would go to an address it must not (a name re-pointed since the subscription)."""


def _checked_address(host: str, port: int) -> str:
    """The address to connect to for `host`: every address it resolves to must be public (BlockedAddress)."""
    literal = _literal_address(host)
    addresses = [str(literal)] if literal is not None else _resolve(host, port)
    for text in addresses:
        try:
            blocked = address_blocked(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            blocked = True
        if blocked:
            raise BlockedAddress(f"{host} resolves to a non-public address")
    if not addresses:
        raise OSError(f"{host} resolves to nothing")
    return addresses[0]


class _PinnedAdapter(HTTPAdapter):
    """Sends to the address it checked itself, so no name can be re-pointed between check and connect.

    The name is resolved here and every address must be public; the request then goes to the first
    address, with the name kept for the Host header, TLS's SNI and the certificate's check.
    """

    def send(self, request, *args, **kwargs):
        parts = urlsplit(request.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = _checked_address(parts.hostname or "", port)
        except _NotAHost as exc:
            raise BlockedAddress(f"{parts.hostname} is no host") from exc
        request.headers["Host"] = parts.netloc
        pinned = f"[{address}]" if ":" in address else address
        request.url = urlunsplit((parts.scheme, f"{pinned}:{port}", parts.path, parts.query, parts.fragment))
        return super().send(request, *args, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            name = urlsplit("//" + request.headers["Host"]).hostname
            pool_kwargs["server_hostname"] = pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs


def _sessions() -> tuple[requests.Session, requests.Session]:
    """(for endpoints that must be public, for PUSH_ENDPOINT_ALLOW's): no proxies from the
    environment, no redirects (a push service answers, it does not send us elsewhere)."""
    public, allowed = requests.Session(), requests.Session()
    for session in (public, allowed):
        session.trust_env = False
        session.max_redirects = 0
    public.mount("https://", _PinnedAdapter())
    public.mount("http://", _PinnedAdapter())
    return public, allowed


# What is sent -----------------------------------------------------------------------------------


def push_url(notification: Notification) -> str:
    """The page a click on the push opens: the visit of a call, else the user's portal."""
    if notification.type == NotificationType.VIDEO_CALL and notification.related_id:
        return f"/visit/{notification.related_id}/"
    role = getattr(notification.user, "role", "")
    if role == "DOCTOR":
        return "/doctor/"
    if role == "PATIENT" and not notification.user.is_staff:
        return "/patient/"
    return "/admin/" if notification.user.is_staff or role == "ADMIN" else "/patient/"


def _json(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def push_payload(notification: Notification) -> bytes:
    """The decrypted payload: JSON {notification_id, type, title, body, url}, at most MAX_PAYLOAD_BYTES.

    Built from the stored notification only (its text never names the appointment's reason); a
    body too long is cut, with an ellipsis, at a character boundary.
    """
    data = {
        "notification_id": notification.pk,
        "type": notification.type,
        "title": notification.title,
        "body": notification.message,
        "url": push_url(notification),
    }
    encoded = _json(data)
    if len(encoded) <= MAX_PAYLOAD_BYTES:
        return encoded
    room = MAX_PAYLOAD_BYTES - len(_json({**data, "body": "…"}))
    body, used = [], 0
    for char in notification.message:
        size = len(_json({"b": char})) - len(_json({"b": ""}))
        if used + size > room:
            break
        body.append(char)
        used += size
    data["body"] = "".join(body) + "…"
    return _json(data)


def push_headers(notification: Notification) -> dict[str, str]:
    """TTL, Urgency and (for alerts that replace an older one) Topic, per the notification's type."""
    urgent = notification.type in URGENT_TYPES
    headers = {
        "TTL": str(QUEUE_TTL_SECONDS if notification.type in QUEUE_TYPES else DEFAULT_TTL_SECONDS),
        "Urgency": "high" if urgent else "normal",
    }
    # RFC 8030 Topic: at most 32 characters of the URL-safe base64 alphabet. A newer alert of the same
    # topic replaces one the browser has not fetched yet: "you're next" then "it's your turn".
    if notification.related_id and notification.type in QUEUE_TYPES:
        headers["Topic"] = f"queue-{notification.related_id}"[:32]
    elif notification.related_id and notification.type == NotificationType.VIDEO_CALL:
        headers["Topic"] = f"call-{notification.related_id}"[:32]
    return headers


_vapid_cache: dict[tuple[str, str, str], tuple[str, int]] = {}
_vapid_lock = threading.Lock()


def vapid_authorization(audience: str, *, now: float | None = None) -> str:
    """The `Authorization: vapid t=…, k=…` header for a push service origin, re-signed hourly."""
    now = time.time() if now is None else now
    cache_key = (settings.VAPID_PRIVATE_KEY, settings.VAPID_SUBJECT, audience)
    with _vapid_lock:
        cached = _vapid_cache.get(cache_key)
        if cached and cached[1] - now > VAPID_RESIGN_SECONDS:
            return cached[0]
    exp = int(now) + VAPID_TOKEN_SECONDS
    signer = Vapid02(private_key=vapid_key())
    header = signer.sign({"sub": settings.VAPID_SUBJECT, "aud": audience, "exp": exp})["Authorization"]
    with _vapid_lock:
        if len(_vapid_cache) > 1000:
            _vapid_cache.clear()
        _vapid_cache[cache_key] = (header, exp)
    return header


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


# Planning (in the change's transaction) ---------------------------------------------------------


def push_plan(notifications: list[Notification]) -> list[PushMessage]:
    """Store a message per notification and subscription of its user, and wake the worker (caller's transaction)."""
    if not notifications or not settings.VAPID_PRIVATE_KEY:
        return []
    subscriptions = defaultdict(list)
    for pk, user_id in PushSubscription.objects.filter(user_id__in={n.user_id for n in notifications}).values_list(
        "pk", "user_id"
    ):
        subscriptions[user_id].append(pk)
    if not subscriptions:
        return []
    now = timezone.now()
    messages = [
        PushMessage(notification=notification, subscription_id=subscription_id, due_at=now)
        for notification in notifications
        for subscription_id in subscriptions[notification.user_id]
    ]
    PushMessage.objects.bulk_create(messages)
    wake(now)
    return messages


def wake(at: datetime.datetime) -> None:
    """Queue a run of the push worker at `at`, in the caller's transaction (it exists iff the rows do)."""
    send_due_pushes.using(run_after=at).enqueue()


# Sending (the worker) ---------------------------------------------------------------------------


def retry_after_seconds(value: str | None, *, now: datetime.datetime) -> float | None:
    """A Retry-After header's delay: delta-seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(attempts: int, retry_after: float | None = None) -> datetime.timedelta:
    """How long after its `attempts`-th failure a message is tried again: PUSH_RETRY_SECONDS doubling,
    or the service's Retry-After when that is longer, at most MAX_RETRY_SECONDS."""
    backoff = settings.PUSH_RETRY_SECONDS * 2 ** max(0, attempts - 1)
    return datetime.timedelta(seconds=min(MAX_RETRY_SECONDS, max(backoff, retry_after or 0)))


def _post(message: PushMessage, sessions) -> requests.Response:
    subscription = message.subscription
    endpoint = subscription.endpoint
    allowed = endpoint_allowed_by_setting(endpoint)
    headers = push_headers(message.notification)
    ttl = int(headers.pop("TTL"))
    headers["Authorization"] = vapid_authorization(_origin(endpoint))
    return webpush(
        subscription_info={"endpoint": endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}},
        data=push_payload(message.notification),
        ttl=ttl,  # pywebpush sends TTL: 0 unless told
        headers=headers,
        timeout=settings.PUSH_TIMEOUT_SECONDS,
        requests_session=sessions[1] if allowed else sessions[0],
    )


def _finish(message: PushMessage, token: str, **changes) -> int:
    return PushMessage.objects.filter(pk=message.pk, claim=token).update(claim="", claimed_until=None, **changes)


def _subscription_drop(message: PushMessage, why: str) -> None:
    logger.info("push subscription %s deleted (%s)", message.subscription_id, why)
    PushSubscription.objects.filter(pk=message.subscription_id).delete()


def _send_one(message_id: int, token: str, sessions, now: datetime.datetime | None = None) -> str:
    """Send one claimed message if the claim is still ours; record the outcome, which it returns:
    "sent", "gone" (subscription deleted), "retry", "failed" or "skipped". `now`: the tests' clock."""
    lease_end = timezone.now() + datetime.timedelta(seconds=settings.TASK_LEASE_SECONDS)
    mine = PushMessage.objects.filter(pk=message_id, claim=token, state=PushMessage.State.PENDING)
    if not mine.update(claimed_until=lease_end):
        return "skipped"
    message = mine.select_related("notification__user", "subscription").first()
    if message is None:
        return "skipped"
    if not endpoint_allowed_by_setting(message.subscription.endpoint) and endpoint_problem(
        message.subscription.endpoint
    ):
        _subscription_drop(message, "endpoint no longer public")
        return "gone"
    status, retry_after, error = None, None, ""
    try:
        response = _post(message, sessions)
        status = response.status_code
    except WebPushException as exc:
        if exc.response is None:
            error = "WebPushException"
        else:
            status = exc.response.status_code
            retry_after = exc.response.headers.get("Retry-After")
    except BlockedAddress:
        _subscription_drop(message, "its host resolves to a non-public address")
        return "gone"
    except (requests.RequestException, OSError) as exc:
        error = type(exc).__name__
    now = now or timezone.now()
    attempts = message.attempts + 1
    if status is not None and 200 <= status < 300:
        _finish(message, token, state=PushMessage.State.SENT, attempts=attempts, last_status=status, sent_at=now)
        return "sent"
    if status in (404, 410):
        _subscription_drop(message, f"push service answered {status}")
        return "gone"
    retryable = status is None or status == 429 or status >= 500
    give_up = not retryable or attempts >= settings.PUSH_MAX_ATTEMPTS
    logger.warning(
        "push %s to subscription %s failed (attempt %d): %s",
        message.notification_id,
        message.subscription_id,
        attempts,
        status or error,
    )
    delay = retry_delay(attempts, retry_after_seconds(retry_after, now=now))
    with transaction.atomic():
        updated = _finish(
            message,
            token,
            attempts=attempts,
            last_status=status,
            state=PushMessage.State.FAILED if give_up else PushMessage.State.PENDING,
            due_at=now + delay,
        )
        if updated and not give_up:
            wake(now + delay)
    return "failed" if give_up else "retry"


def pushes_send_due(*, now: datetime.datetime | None = None, limit: int = 100) -> int:
    """Claim the messages whose time has come and send them; returns how many the push services accepted.

    The worker's task. Claimed in batches of `limit`, each batch sent over kept-alive connections.
    `now` (tests) looks at one moment once.
    """
    if vapid_key() is None:
        return 0
    sessions = _sessions()
    sent = 0
    try:
        while True:
            now_ = now or timezone.now()
            token, ids = claim_due(
                PushMessage.objects.filter(state=PushMessage.State.PENDING, due_at__lte=now_),
                now=now_,
                limit=limit,
                on_claimed=wake,
            )
            for message_id in ids:
                sent += _send_one(message_id, token, sessions, now) == "sent"
            if len(ids) < limit or now is not None:
                return sent
    finally:
        for session in sessions:
            session.close()


@task()
def send_due_pushes() -> int:
    """The worker's task: send the Web Push messages that are due."""
    return pushes_send_due()
