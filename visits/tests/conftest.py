import datetime

import pytest
from django.utils import timezone

from appointments.models import Mode
from appointments.services import appointment_book


@pytest.fixture
def video_visit(db, patient, doctor, tomorrow):
    """A CONFIRMED video visit of `patient` with `doctor`, tomorrow at 09:00 (clinic time)."""
    return appointment_book(
        actor=patient, doctor=doctor, date=tomorrow, time=datetime.time(9, 0), reason="chest pain", mode=Mode.VIDEO
    )


@pytest.fixture
def starts_at(video_visit):
    """The video visit's start as an aware datetime."""
    return timezone.make_aware(datetime.datetime.combine(video_visit.date, video_visit.time))
