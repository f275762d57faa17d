import pytest

from tests.live import Daphne


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    """A daphne process serving the app on a free port, against the test database."""
    instance = Daphne()
    yield instance
    instance.stop()
