"""Who is asking (the client address) and how often: login-failure and sign-up limits.

Counters live in Django's cache (Redis shared by every server process when REDIS_URL is set), one
fixed window per key that opens with its first hit. A cache that cannot be reached throttles
nobody: signing in matters more than counting, and the outage is logged.
"""

import hashlib
import ipaddress
import logging
import math
import re
import time
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache

from .emails import email_normalise

logger = logging.getLogger(__name__)

_RATE_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


# --- the client address ----------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _parse_ip(value: str):
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def client_address(request) -> str:
    """The address a request came from: REMOTE_ADDR, or behind a trusted proxy the address it reports.

    A proxy appends the address it was reached from to X-Forwarded-For, so reading from the right,
    the first address that is not a trusted proxy is the client; whatever lies left of it came from
    the client and may be forged. Without TRUSTED_PROXIES the header is ignored.
    """
    remote = request.META.get("REMOTE_ADDR") or ""
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))
    remote_ip = _parse_ip(remote)
    if not trusted or remote_ip is None or not any(remote_ip in net for net in trusted):
        return remote
    address = str(remote_ip)
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        ip = _parse_ip(hop)
        if ip is None:
            break  # a malformed entry: the last proxy that spoke for it is the best we know
        address = str(ip)
        if not any(ip in net for net in trusted):
            break
    return address


# --- counters --------------------------------------------------------------------------------


def _hit(key: str, window: int) -> int:
    """Count one more in the window of `key` (opened now if there is none); returns the new count."""
    cache.add(f"{key}:start", time.time(), timeout=window)
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # the window closed between the two calls
        cache.set(f"{key}:start", time.time(), timeout=window)
        cache.set(key, 1, timeout=window)
        return 1


def _seconds_left(start: float | None, window: int) -> int:
    if start is None:
        return window
    return max(1, math.ceil(start + window - time.time()))


# --- login failures --------------------------------------------------------------------------


def _email_key(email: str) -> str:
    # Hashed: the cache need not hold the addresses people type. Normalised: every spelling that signs
    # in to one account counts against it.
    digest = hashlib.sha256(email_normalise(email).encode()).hexdigest()
    return f"auth:login-failures:email:{digest}"


def _address_key(address: str) -> str:
    return f"auth:login-failures:address:{address}"


class LoginAttempt:
    """One sign-in attempt against the failure limits of its email and its client address.

        attempt = LoginAttempt(request, email)
        if (wait := attempt.retry_after()) is not None: ...  # 429, Retry-After: wait
        ...authenticate...
        wrong credentials: attempt.failed()
        signed in: ask retry_after() once more, and refuse if the limit was reached meanwhile

    Only failures count, so any number of parallel successful sign-ins (a load test from one
    machine) is never refused. Parallel wrong guesses can overshoot the limit by as many as the
    server checks at once; the second look keeps a right password among them from being honoured
    once the limit is reached.
    """

    def __init__(self, request, email: str | None):
        self.limits = [(_address_key(client_address(request)), settings.LOGIN_FAILURES_PER_ADDRESS)]
        if isinstance(email, str) and email.strip():
            self.limits.append((_email_key(email), settings.LOGIN_FAILURES_PER_EMAIL))

    def retry_after(self) -> int | None:
        """Seconds until this email or this client may try again; None when they may now."""
        try:
            found = cache.get_many([k for key, _ in self.limits for k in (key, f"{key}:start")])
        except Exception:
            logger.warning("login throttle: the cache is unreachable; not throttling", exc_info=True)
            return None
        waits = [
            _seconds_left(found.get(f"{key}:start"), settings.LOGIN_FAILURE_WINDOW)
            for key, limit in self.limits
            if found.get(key, 0) >= limit
        ]
        return max(waits) if waits else None

    def failed(self) -> None:
        """Count a failed sign-in (wrong credentials or an inactive account) against its email and address."""
        try:
            for key, _ in self.limits:
                _hit(key, settings.LOGIN_FAILURE_WINDOW)
        except Exception:
            logger.warning("login throttle: the cache is unreachable; a failed sign-in was not counted", exc_info=True)


# --- sign-ups --------------------------------------------------------------------------------


def parse_rate(rate: str) -> tuple[int, int] | None:
    """`20/min` → (20, 60); `off` → None. Units: sec, min, hour, day (or s, m, h, d)."""
    text = rate.strip().lower()
    if text == "off":
        return None
    match = re.fullmatch(r"(\d+)/(\w+)", text)
    if not match or match[2] not in _RATE_UNITS:
        raise ValueError(f"not a rate: {rate!r}")
    return int(match[1]), _RATE_UNITS[match[2]]


def register_retry_after(request) -> int | None:
    """Count a sign-up attempt from this client (API and portal together); seconds to wait if over REGISTER_RATE."""
    rate = parse_rate(settings.REGISTER_RATE)
    if rate is None:
        return None
    limit, window = rate
    key = f"auth:register:{client_address(request)}"
    try:
        if _hit(key, window) <= limit:
            return None
        return _seconds_left(cache.get(f"{key}:start"), window)
    except Exception:
        logger.warning("sign-up throttle: the cache is unreachable; not throttling", exc_info=True)
        return None
