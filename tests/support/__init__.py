"""Helpers for the REST and service tests: the contract's table of moves, JWT clients, times."""

import datetime

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
