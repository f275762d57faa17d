"""What opening a socket costs in queries: exact numbers, so that one more query on connect shows up.

The consumer queries from channels' worker thread, with a connection of its own, so the queries are
counted at the cursor, on every connection of the process."""

import contextlib

import pytest
from django.db.backends.utils import CursorWrapper

from tests.support.wsutil import book, frame, open_socket, ready

pytestmark = [pytest.mark.django_db(transaction=True)]


@contextlib.contextmanager
def counting_queries():
    """Every SQL statement run while inside, on any thread, as a list of their texts."""
    seen: list[str] = []
    real = CursorWrapper._execute_with_wrappers

    def counted(self, sql, params, many, executor):
        seen.append(sql)
        return real(self, sql, params, many, executor)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CursorWrapper, "_execute_with_wrappers", counted)
        yield seen


async def test_a_fresh_connect_costs_one_query(patient):
    with counting_queries() as queries:
        socket = await open_socket(patient)
        await ready(socket)
    # the active user with the newest id of their stream, in one statement
    assert len(queries) == 1, queries
    await socket.disconnect()


async def test_a_resume_costs_one_more_for_the_replay(patient, doctor):
    await book(actor=patient, doctor=doctor)  # two events for the patient: new_notification, appointment_updated
    with counting_queries() as queries:
        socket = await open_socket(patient, query="last_event_id=0")
        await ready(socket)
        replayed = [await frame(socket) for _ in range(2)]
    # the user and the stream's head, then the replay's page of events
    assert len(queries) == 2, queries
    assert [f["id"] for f in replayed] == [1, 2]
    await socket.disconnect()
