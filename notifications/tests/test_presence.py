"""The presence store: who has a socket open, and when a socket of a user was last alive."""

import math
import secrets

import pytest
import time_machine
from django.conf import settings

from notifications import presence

pytestmark = pytest.mark.usefixtures("own_layer_prefix")

T0 = 1_900_000_000.0  # a moment, in epoch seconds, that the store's clock is set to


@pytest.fixture
def redis_store():
    if not settings.REDIS_URL:
        pytest.skip("set REDIS_URL")
    store = presence.RedisPresence(settings.REDIS_URL)
    yield store
    store._sync_client.delete(presence._key(), presence._left_key())


def _user() -> int:
    return 10**9 + secrets.randbelow(10**6)


async def test_memory_vouches_for_its_own_sockets_at_once_and_for_ever():
    store, user, other = presence.MemoryPresence(), _user(), _user()
    await store.announce("here", online=[user], offline=[])
    assert store.sure_online({user, other}) == {user}
    assert store.sightings({user, other}) == ({user: math.inf}, {user})
    await store.announce("here", online=[], offline=[user])
    assert store.sightings({user}) == ({}, set())


async def test_redis_vouches_for_no_one_without_asking(redis_store):
    user = _user()
    await redis_store.announce("here", online=[user], offline=[])
    assert redis_store.sure_online({user}) == set()
    assert redis_store.is_online(user)


async def test_a_users_last_heartbeat_on_any_node_is_when_a_socket_of_theirs_was_last_alive(redis_store):
    user, other = _user(), _user()
    with time_machine.travel(T0, tick=False) as clock:
        await redis_store.announce("a", online=[user], offline=[])
        await redis_store.announce("b", online=[user, other], offline=[])
        clock.shift(20)
        await redis_store.announce("a", online=[user], offline=[])  # node b was killed: it no longer beats
        assert redis_store.sightings({user, other}) == ({user: T0 + 20, other: T0}, {user, other})
        assert redis_store.connected_users() == 2


async def test_a_clean_close_is_remembered_as_the_moment_the_socket_was_last_alive(redis_store):
    user = _user()
    with time_machine.travel(T0, tick=False) as clock:
        await redis_store.announce("a", online=[user], offline=[])
        clock.shift(7)
        await redis_store.announce("a", online=[], offline=[user])
        assert redis_store.sightings({user}) == ({user: T0 + 7}, set())
        assert not redis_store.is_online(user)


async def test_an_entry_not_refreshed_for_the_ttl_counts_neither_online_nor_alive(redis_store):
    user = _user()
    with time_machine.travel(T0, tick=False) as clock:
        await redis_store.announce("killed", online=[user], offline=[])
        clock.shift(presence.TTL_SECONDS - 1)
        assert redis_store.is_online(user)  # within the TTL a killed process's users still count online
        clock.shift(2)
        assert redis_store.sightings({user}) == ({}, set())
        assert redis_store.connected_users() == 0
