"""factory-boy factories for the appointments app's models: each model's test defaults written once.

Rows are saved as they are: no service runs, so no notification, event or reminder comes with them."""

import datetime

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.tests.factories import DoctorFactory, UserFactory
from appointments.models import Appointment


def _slot(n: int) -> datetime.time:
    return datetime.time(n // 60 % 24, n % 60)


class AppointmentFactory(DjangoModelFactory):
    """A CONFIRMED appointment tomorrow, with a patient and a doctor of its own unless given.

    Each row takes the next queue number and a slot of its own (a minute apart), so a batch for one
    doctor and day keeps the unique constraints."""

    class Meta:
        model = Appointment

    patient = factory.SubFactory(UserFactory)
    doctor = factory.SubFactory(DoctorFactory)
    date = factory.LazyFunction(lambda: timezone.localdate() + datetime.timedelta(days=1))
    queue_number = factory.Sequence(lambda n: n + 1)
    time = factory.LazyAttribute(lambda row: _slot(row.queue_number - 1))
