"""factory-boy factories: the tests' rows, with each model's test defaults written once.

`UserFactory(name="Pat")`, `DoctorFactory(user__email="doc@example.com")`, `AppointmentFactory.create_batch(30)`.
Rows are saved as they are: no service runs, so no notification, event or reminder comes with them."""

import datetime

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory, Password

from accounts.models import Doctor, Role, User
from appointments.models import Appointment
from notifications.models import Notification, NotificationType
from queues.models import Board

PASSWORD = "Str0ng-pass-123"


class UserFactory(DjangoModelFactory):
    """A patient who can sign in with PASSWORD (hashed with the test run's hasher, as `create_user` would)."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    role = Role.PATIENT
    password = Password(PASSWORD)


class DoctorFactory(DjangoModelFactory):
    """A doctor's profile, with a user of the DOCTOR role of its own."""

    class Meta:
        model = Doctor

    user = factory.SubFactory(UserFactory, role=Role.DOCTOR)
    specialty = "General"


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


class NotificationFactory(DjangoModelFactory):
    """An unread APPOINTMENT_BOOKED notification about an appointment."""

    class Meta:
        model = Notification

    user = factory.SubFactory(UserFactory)
    type = NotificationType.APPOINTMENT_BOOKED
    title = "t"
    message = "m"
    related_id = 1
    related_type = "Appointment"


class BoardFactory(DjangoModelFactory):
    """A waiting-room board; `BoardFactory(doctors=[...])` shows those doctors' queues."""

    class Meta:
        model = Board
        skip_postgeneration_save = True

    name = "Waiting room"

    @factory.post_generation
    def doctors(self, create, extracted, **kwargs):
        if create and extracted:
            self.doctors.add(*extracted)
