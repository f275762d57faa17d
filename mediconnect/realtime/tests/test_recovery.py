"""A queue told changed (`queue.changed`: the caller sat below queues/) is read once by the process's hub,
and its place among that queue's messages is kept while it is read."""

import asyncio

from channels.layers import InMemoryChannelLayer

from core.groups import QUEUE_CHANGED, QUEUE_PUSH, queue_group
from mediconnect.realtime import recovery
from mediconnect.realtime.hub import Hub

GROUP = queue_group(5)


class Sink:
    def __init__(self):
        self.got: list[dict] = []
        self.arrived = asyncio.Queue()

    def queue_push(self, message):
        self.got.append(message["queue"])
        self.arrived.put_nowait(message["queue"])

    async def next(self) -> dict:
        return await asyncio.wait_for(self.arrived.get(), 5)


async def watching_hub() -> tuple[Hub, Sink]:
    hub, sink = Hub(InMemoryChannelLayer()), Sink()
    hub.channel = "test!"  # joined without the hub's loops: only dispatch is under test
    hub._started = asyncio.get_running_loop().create_future()
    hub._started.set_result(None)
    await hub.join(GROUP, sink)
    return hub, sink


async def test_a_push_that_arrives_while_a_changed_queue_is_read_waits_for_it(monkeypatch):
    hub, sink = await watching_hub()
    release, reading = asyncio.Event(), asyncio.Event()

    async def slow_read(doctor_ids):
        reading.set()
        await release.wait()
        return {5: {"current_queue": 0}}  # read before the update below committed

    monkeypatch.setattr(recovery, "_read_queues", slow_read)
    await hub.dispatch({"type": QUEUE_CHANGED, "doctor_id": 5, "group": GROUP})
    await hub.dispatch({"type": QUEUE_PUSH, "frame": "{}", "queue": {"current_queue": 1}, "group": GROUP})
    await asyncio.wait_for(reading.wait(), 5)
    assert sink.got == []  # the update waits behind the read

    release.set()
    assert [await sink.next(), await sink.next()] == [{"current_queue": 0}, {"current_queue": 1}]  # newest last
    await asyncio.wait_for(asyncio.gather(*hub._tasks), 5)
    assert GROUP not in hub._queue_backlog


async def test_changes_told_while_one_is_read_cost_one_more_read_not_one_each(monkeypatch):
    hub, sink = await watching_hub()
    release, reads = asyncio.Event(), []

    async def read(doctor_ids):
        reads.append(doctor_ids)
        await release.wait()
        return {5: {"current_queue": len(reads)}}

    monkeypatch.setattr(recovery, "_read_queues", read)
    for _ in range(4):
        await hub.dispatch({"type": QUEUE_CHANGED, "doctor_id": 5, "group": GROUP})
    release.set()
    await asyncio.wait_for(asyncio.gather(*hub._tasks), 5)
    assert len(reads) == 1 and sink.got == [{"current_queue": 1}]  # the later ones were in before the read


async def test_a_queue_nobody_here_watches_is_not_read(monkeypatch):
    hub, _sink = await watching_hub()
    monkeypatch.setattr(recovery, "_read_queues", None)  # any read would fail the test
    await hub.dispatch({"type": QUEUE_CHANGED, "doctor_id": 6, "group": queue_group(6)})
    assert hub._queue_backlog == {}
