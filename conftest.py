"""Fixtures shared by every test: users of each role and authenticated API clients."""

import uuid

import pytest
from channels.layers import channel_layers
from django.conf import settings

from accounts.tests.factories import make_doctor, make_user


@pytest.fixture(autouse=True, scope="session")
def _isolated_channel_layer():
    """Give this test run its own key prefix on a shared Redis, and fresh layer objects."""
    config = settings.CHANNEL_LAYERS["default"].setdefault("CONFIG", {})
    if "hosts" in config:
        config["prefix"] = f"mctest{uuid.uuid4().hex[:8]}"
    channel_layers.backends.clear()
    yield config.get("prefix")


@pytest.fixture
def patient(db):
    return make_user(email="pat@example.com", name="Pat Patient")


@pytest.fixture
def patient2(db):
    return make_user(email="pat2@example.com", name="Second Patient")


@pytest.fixture
def doctor(db):
    return make_doctor(email="doc@example.com", name="Dr. Doc", specialty="Cardiology")


@pytest.fixture
def doctor2(db):
    return make_doctor(email="doc2@example.com", name="Dr. Other", specialty="ENT")


@pytest.fixture
def admin_user(db):
    from accounts.models import User

    return User.objects.create_superuser("boss@example.com", "x-Str0ng-pass", name="Boss")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Drop connections that async tests opened in worker threads, so the test database can be removed."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
