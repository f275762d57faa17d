import uuid
from dataclasses import dataclass

import pytest

from tests.faults import INITDB, PG_CTL, REDIS_SERVER, FaultUsers, PostgresCluster, RedisServer
from tests.live import Daphne


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    """A daphne process serving the app on a free port, against the test database."""
    instance = Daphne()
    yield instance
    instance.stop()


@dataclass
class FaultDatabase:
    cluster: PostgresCluster
    users: FaultUsers


@pytest.fixture(scope="session")
def _fault_database():
    """A PostgreSQL cluster of this run's own, migrated, with accounts: made once, shared by the fault tests."""
    if INITDB is None or PG_CTL is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl (apt-get install postgresql)")
    cluster = PostgresCluster()
    try:
        yield FaultDatabase(cluster, FaultUsers(cluster))
    finally:
        cluster.close()


@pytest.fixture
def pg(_fault_database):
    """The fault cluster, running at the start and again at the end of the test (whatever it did to it)."""
    _fault_database.cluster.ensure_up()
    yield _fault_database.cluster
    _fault_database.cluster.ensure_up()


@pytest.fixture
def users(_fault_database) -> FaultUsers:
    return _fault_database.users


@pytest.fixture(scope="session")
def _redis_server():
    if REDIS_SERVER is None:
        pytest.skip("needs redis-server (apt-get install redis-server)")
    instance = RedisServer()
    yield instance
    instance.close()


@pytest.fixture
def redis_server(_redis_server):
    """A redis-server of the run's own, running (not hung) at the start and the end of the test."""
    _redis_server.ensure_up()
    yield _redis_server
    _redis_server.ensure_up()


@pytest.fixture
def fault_server(pg, redis_server):
    """`fault_server(**env)` → a daphne on the fault cluster and the own Redis (the same key prefix for
    every process of the test); all of them are stopped at the end."""
    started: list[Daphne] = []
    prefix = f"fault{uuid.uuid4().hex[:8]}"

    def start(*, port: int | None = None, **env) -> Daphne:
        env = {"DATABASE_URL": pg.url(), "REDIS_URL": redis_server.url, "CHANNEL_LAYER_PREFIX": prefix, **env}
        instance = Daphne(port=port, **env)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()
