"""Helpers for the REST and service tests: the contract's table of moves, JWT clients, times, races."""

import datetime
import threading

from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from appointments.models import Status

ALL_STATUSES = [s.value for s in Status]

# The contract's table of status moves, written out so that a change to the code's table shows up.
CONTRACT_MOVES = {
    ("PENDING", "CONFIRMED"): {"doctor", "admin"},
    ("PENDING", "CANCELLED"): {"patient", "doctor", "admin"},
    ("CONFIRMED", "CANCELLED"): {"patient", "doctor", "admin"},
    ("CONFIRMED", "COMPLETED"): {"doctor", "admin"},
    ("CONFIRMED", "NO_SHOW"): {"doctor", "admin"},
}


# The contract's objects, their keys written out once for every test that checks a payload
# (REST, socket events, boards), so that a key the code adds, renames or drops shows up.
APPOINTMENT_KEYS = {
    "id", "patient", "patient_name", "doctor", "doctor_name", "date", "time", "status", "queue_number",
    "mode", "reason", "created_at", "updated_at",
}  # fmt: skip
NOTIFICATION_KEYS = {"id", "type", "title", "message", "related_id", "related_type", "is_read", "created_at"}
QUEUE_KEYS = {"doctor_id", "date", "current_queue", "estimated_wait", "waiting", "waiting_numbers"}
BOARD_QUEUE_KEYS = QUEUE_KEYS | {"doctor_name", "next"}
FILE_KEYS = {
    "id", "patient", "patient_name", "appointment", "kind", "title", "content_type", "size", "status",
    "uploaded_by", "uploaded_by_name", "created_at",
}  # fmt: skip


def user_of(who):
    """The user behind a fixture: a Doctor profile stands for its user."""
    return getattr(who, "user", who)


def bearer_client(who) -> APIClient:
    """An APIClient that sends a real access token of `who`, as a mobile client would."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user_of(who))}")
    return client


def hhmm(value: str) -> datetime.time:
    return datetime.datetime.strptime(value, "%H:%M").time()


def released_together(count: int, ready, *, timeout: float = 60) -> list:
    """Run `count` threads that start work at the same instant; their results, in thread order.

    Thread i calls `ready(i)` (its setup: a client, a body), which returns the call to make; a barrier
    releases every thread's call at once. Each thread closes its own database connection. Fails the
    test if a thread raised (the barrier is broken, so the others do not wait for it) or outlived `timeout`.
    """
    barrier = threading.Barrier(count, timeout=timeout)
    results: list = [None] * count
    errors: list = []

    def worker(i: int) -> None:
        try:
            call = ready(i)
            barrier.wait()
            results[i] = call()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), name=f"together-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not [t.name for t in threads if t.is_alive()]
    assert errors == []
    return results
