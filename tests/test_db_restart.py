"""PostgreSQL restarted while a server process sat idle: its first request afterwards must not pay for it."""

import pytest

from tests.faults import PASSWORD

pytestmark = [pytest.mark.live]


def test_the_first_request_after_a_postgres_restart_is_served(fault_server, pg, users):
    # One pooled connection, kept open between requests: the one an idle process would lend first.
    server = fault_server(DB_POOL_MIN_SIZE=1, DB_POOL_MAX_SIZE=1)
    token = server.token(users.patient().email, PASSWORD)
    assert server.fetch("GET", "/api/appointments/", None, token).status == 200

    pg.stop("fast")  # ends every session: the pooled connection is now dead, and nobody has used it
    pg.start()

    answer = server.fetch("GET", "/api/appointments/", None, token, timeout=30)
    assert answer.status == 200, (answer.status, answer.text[:300])
