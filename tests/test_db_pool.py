"""A server process holds at most DB_POOL_MAX_SIZE PostgreSQL connections, however many requests it serves."""

import threading
import uuid

import pytest
from django.db import connection
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tests.factories import UserFactory
from tests.live import Daphne
from tests.support import released_together

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the connection pool is PostgreSQL's; SQLite opens a file"
    ),
]

POOL_MAX = 2
REQUESTS = 24
JOIN_TIMEOUT = 60


def test_concurrent_requests_share_a_bounded_pool(doctor, tomorrow):
    # libpq names the server's connections after PGAPPNAME, so pg_stat_activity tells them apart
    # from this test's own.
    app_name = f"mc-pool-{uuid.uuid4().hex[:8]}"
    tokens = [str(AccessToken.for_user(UserFactory())) for _ in range(REQUESTS)]
    stop = threading.Event()
    counts: list[int] = []
    errors: list = []

    def sample() -> None:
        try:
            with connection.cursor() as cursor:
                while not stop.is_set():
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = %s",
                        [app_name],
                    )
                    counts.append(cursor.fetchone()[0])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def book(i: int):
        # Bookings of one doctor wait for each other on the doctor's row: without a bound,
        # every waiting request would hold a connection of its own.
        body = {"doctor": doctor.pk, "date": tomorrow.isoformat(), "time": f"{8 + i // 4:02d}:{15 * (i % 4):02d}"}
        return lambda: server.request("POST", "/api/appointments/", body, token=tokens[i])

    server = Daphne(DB_POOL_MAX_SIZE=POOL_MAX, DB_POOL_MIN_SIZE=1, PGAPPNAME=app_name)
    sampler = threading.Thread(target=sample, name="pg-activity")
    try:
        sampler.start()
        results = released_together(REQUESTS, book, timeout=JOIN_TIMEOUT)
    finally:
        stop.set()
        sampler.join(JOIN_TIMEOUT)
        server.stop()

    assert errors == []
    assert [status for status, _ in results] == [201] * REQUESTS, server.output()[-2000:]
    assert sorted(body["queue_number"] for _, body in results) == list(range(1, REQUESTS + 1))
    assert counts and 1 <= max(counts) <= POOL_MAX
