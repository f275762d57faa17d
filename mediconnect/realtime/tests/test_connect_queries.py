"""What opening a socket costs in queries: exact numbers, so that one more query on connect shows up.

The consumer queries from channels' worker thread, with a connection of its own, so the queries are
counted on that thread's connection (tests.support.queries)."""

import pytest

from tests.support.queries import counting_queries
from tests.support.wsutil import book, frame, open_socket, ready

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_a_fresh_connect_costs_one_query(patient):
    async with counting_queries() as queries:
        socket = await open_socket(patient)
        await ready(socket)
    # the active user with the newest id of their stream, in one statement
    assert len(queries) == 1, queries
    await socket.disconnect()


async def test_a_resume_costs_one_more_for_the_replay(patient, doctor):
    await book(actor=patient, doctor=doctor)  # two events for the patient: new_notification, appointment_updated
    async with counting_queries() as queries:
        socket = await open_socket(patient, query="last_event_id=0")
        await ready(socket)
        replayed = [await frame(socket) for _ in range(2)]
    # the user and the stream's head, then the replay's page of events
    assert len(queries) == 2, queries
    assert [f["id"] for f in replayed] == [1, 2]
    await socket.disconnect()
