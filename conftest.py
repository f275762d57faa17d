"""Fixtures shared by every test: users of each role and authenticated API clients."""

import copy
import datetime
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from channels.layers import channel_layers
from django.conf import settings
from django.utils import timezone

from accounts.tests.factories import DoctorFactory, UserFactory
from appointments.services import appointment_book
from documents.append_only import flushing
from tests.support import bearer_client, hhmm, user_of
from tests.support.coturn import coturn  # noqa: F401 (a fixture: a coturn of the run's own, started on first use)

LIVE_TESTS = Path(__file__).parent / "tests"


@pytest.fixture(autouse=True, scope="session")
def _isolated_channel_layer():
    """Give this test run its own key prefix on a shared Redis, and fresh layer objects."""
    config = settings.CHANNEL_LAYERS["default"].setdefault("CONFIG", {})
    if "hosts" in config:
        config["prefix"] = f"mctest{uuid.uuid4().hex[:8]}"
    channel_layers.backends.clear()
    yield config.get("prefix")


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A new layer object per test: channels_redis binds its locks to the event loop of first use,
    and every async test runs in a loop of its own."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def own_layer_prefix(settings):
    """Channel-layer and presence keys of this test's own on a shared Redis: entries other tests leave
    behind stay out of its counts."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"].setdefault("CONFIG", {})["prefix"] = f"mctest{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = layers


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Every test counts sign-in failures and sign-ups from zero: the cache gets a key prefix of the
    test's own (on a shared Redis, clearing would flush other runs' keys; these expire by themselves)."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"mctest{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def _fast_password_hashing(request, settings):
    """PBKDF2 costs a quarter of a second per user; tests in-process check behaviour, not hashing cost.

    Tests under tests/ log in to real daphne processes, which keep the production hashers."""
    if not Path(str(request.node.path)).is_relative_to(LIVE_TESTS):
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _test_files_root():
    """The run's uploaded documents (settings_test's FILES_ROOT, under the temporary directory) go with it."""
    yield
    root = Path(settings.FILES_ROOT)
    if root.name.startswith("mediconnect-test-files-") and root.is_relative_to(tempfile.gettempdir()):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _access_log_flushable(request):
    """On SQLite, let the flush after a transactional test empty the documents' append-only access
    log (documents/append_only.py); PostgreSQL empties it with TRUNCATE, which its trigger allows.

    Set up after the test database (so torn down, and the flag raised, just before its flush); the
    flag is lowered again when the next test starts."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction"))
    flushing(False)
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    flushing(True)


@pytest.fixture
def api():
    """`api(user_or_doctor)` → an APIClient authenticated with that user's JWT."""
    return bearer_client


@pytest.fixture
def today() -> datetime.date:
    return timezone.localdate()


@pytest.fixture
def tomorrow(today) -> datetime.date:
    return today + datetime.timedelta(days=1)


@pytest.fixture
def book(db, tomorrow):
    """`book(patient=, doctor=, date=tomorrow, time="09:00")` → a CONFIRMED appointment, via the service."""

    def _book(*, patient, doctor, date=None, time="09:00", reason="", actor=None):
        return appointment_book(
            actor=user_of(actor or patient),
            doctor=doctor,
            date=date or tomorrow,
            time=hhmm(time) if isinstance(time, str) else time,
            reason=reason,
            patient=patient,
        )

    return _book


@pytest.fixture
def patient(db):
    return UserFactory(email="pat@example.com", name="Pat Patient")


@pytest.fixture
def patient2(db):
    return UserFactory(email="pat2@example.com", name="Second Patient")


@pytest.fixture
def doctor(db):
    return DoctorFactory(user__email="doc@example.com", user__name="Dr. Doc", specialty="Cardiology")


@pytest.fixture
def doctor2(db):
    return DoctorFactory(user__email="doc2@example.com", user__name="Dr. Other", specialty="ENT")


@pytest.fixture
def admin_user(db):
    from accounts.models import User

    return User.objects.create_superuser("boss@example.com", "x-Str0ng-pass", name="Boss")


@pytest.fixture
def staff(client, admin_user):
    """Django's test client signed in as the clinic's admin (the Django admin's pages)."""
    client.force_login(admin_user)
    return client


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


@pytest.fixture
def push_receiver(settings):
    """A push service of the test's own on loopback (tests/support/push_receiver.py), allowed as an
    endpoint (PUSH_ENDPOINT_ALLOW), checking every message's VAPID token against this run's key."""
    from notifications.webpush import application_server_key
    from tests.support.push_receiver import PushReceiver

    receiver = PushReceiver(subject=settings.VAPID_SUBJECT, server_key=application_server_key()).start()
    settings.PUSH_ENDPOINT_ALLOW = [f"{receiver.origin}/"]
    yield receiver
    receiver.stop()
