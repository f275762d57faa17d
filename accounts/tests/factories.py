"""factory-boy factories for the accounts app's models: each model's test defaults written once.

`UserFactory(name="Pat")`, `DoctorFactory(user__email="doc@example.com")`.

Rows are saved as they are: no service runs, so no notification, event or reminder comes with them."""

import factory
from factory.django import DjangoModelFactory, Password

from accounts.models import Doctor, Role, User

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
