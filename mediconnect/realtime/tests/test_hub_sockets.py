"""The per-user socket count behind WS_MAX_SOCKETS_PER_USER, in each presence store."""

import secrets
import time

import pytest
from django.conf import settings

from notifications import presence

STORES = [
    pytest.param(presence.MemoryPresence, id="memory"),
    pytest.param(
        lambda: presence.RedisPresence(settings.REDIS_URL),
        id="redis",
        marks=pytest.mark.skipif(not settings.REDIS_URL, reason="set REDIS_URL"),
    ),
]


@pytest.mark.parametrize("make", STORES)
async def test_the_oldest_sockets_beyond_the_limit_are_named_for_closing(make):
    store, user = make(), 10**9 + secrets.randbelow(10**6)
    names = [presence.socket_name(node, i) for i, node in enumerate(["a", "b", "a", "b"])]
    assert [await store.register_socket(user, name, 2) for name in names[:2]] == [[], []]
    assert await store.register_socket(user, names[2], 2) == [names[0]]
    assert await store.register_socket(user, names[3], 2) == [names[1]]
    assert store.open_sockets(user) == 2
    await store.forget_socket(user, names[2])
    assert store.open_sockets(user) == 1
    await store.forget_socket(user, names[3])


@pytest.mark.skipif(not settings.REDIS_URL, reason="entries expire only in the shared store")
async def test_sockets_of_a_crashed_process_stop_counting_once_their_entries_expire():
    store, user = presence.RedisPresence(settings.REDIS_URL), 10**9 + secrets.randbelow(10**6)
    crashed, alive = presence.socket_name("gone", 1), presence.socket_name("here", 1)
    await store.register_socket(user, crashed, 2)
    await store.register_socket(user, alive, 2)
    # The crashed process no longer refreshes its entry: it runs out (as after TTL seconds).
    store._sync_client.zadd(presence._sockets_key(user), {crashed: time.time() - 1})
    await store.refresh_sockets({alive: user})  # the live process's heartbeat
    assert store.open_sockets(user) == 1

    newer = presence.socket_name("here", 2)
    assert await store.register_socket(user, newer, 2) == []  # the dead one takes no slot
    assert store.open_sockets(user) == 2
    store._sync_client.delete(presence._sockets_key(user))


@pytest.mark.skipif(not settings.REDIS_URL, reason="the shared store's connection pool")
async def test_a_storm_of_sockets_is_counted_whole_and_forgotten_whole():
    # A thousand sockets opening (and then closing) at once, as after a blip: more commands at once
    # than the store has connections. Each one is counted, and each one forgotten.
    import asyncio

    store, first = presence.RedisPresence(settings.REDIS_URL), 10**9 + secrets.randbelow(10**6)
    sockets = [(first + i, presence.socket_name("storm", i)) for i in range(1000)]
    await asyncio.gather(*(store.register_socket(user, name, 10) for user, name in sockets))
    assert all(store.open_sockets(user) == 1 for user, _ in sockets[::100])
    await asyncio.gather(*(store.forget_socket(user, name) for user, name in sockets))
    assert all(store.open_sockets(user) == 0 for user, _ in sockets[::100])
