"""Who has a socket open, across every server process, and when a socket of a user was last alive.

A delivery concern: written by the real-time hub (mediconnect.realtime.hub), read by offline
delivery (notifications.delivery: does a cancellation also go by email and SMS?) and the admin API.

Each process's hub announces which users have a socket there. With Redis, each such user is a
member `user_id|node` of one sorted set (`<prefix>:presence:beats`) scored by the moment the
process last vouched for it (its heartbeat): the hub refreshes all of its members every HEARTBEAT
seconds in one command, so the users of a killed process drop out after TTL seconds. A user whose
last socket on a node closes leaves that set, and the moment goes to a second one
(`<prefix>:presence:left`), so that "was a socket of this user alive after this moment?" has an
answer after a clean close too. An entry younger than TTL is no proof that the socket lives now
(its process may have been killed since): only a heartbeat later than a notification proves a
socket was there to see it. Without Redis (one process, in-memory layer) a dict in this process is
the whole truth.

The same store counts each user's open sockets, to hold them to WS_MAX_SOCKETS_PER_USER across
processes. With Redis, a user's sockets are the members of one sorted set (`<prefix>:sockets:<id>`),
each named `<connect time>|<node>|<n>` and scored by the moment it expires; the hub refreshes its
sockets with the presence heartbeat, so a killed process's sockets stop counting after TTL
seconds. Registering a socket and picking who is over the limit is one atomic script: the oldest
by connect time go, whichever process holds them.
"""

import asyncio
import math
import time
import weakref
from typing import NamedTuple

import redis
import redis.asyncio as aioredis
from django.conf import settings

TTL_SECONDS = getattr(settings, "PRESENCE_TTL_SECONDS", 60)
HEARTBEAT_SECONDS = getattr(settings, "PRESENCE_HEARTBEAT_SECONDS", 20)
# Redis connections of a process's presence store, and how long a command waits for a free one.
ASYNC_CONNECTIONS = 50
ASYNC_WAIT_SECONDS = 20
# How long the delivery worker waits for Redis to say when a user's sockets were last alive.
CHECK_TIMEOUT_SECONDS = 0.5
# How long a clean close is remembered: far longer than the delivery worker waits (a worker that is
# later still sends the email, the safe side).
LEFT_KEEP_SECONDS = 3600


def _prefix() -> str:
    return settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "mediconnect")


def _key() -> str:
    # Not `<prefix>:presence`, whose scores were expiry times: a node of the previous release, still
    # writing there during a rolling upgrade, goes unseen (its users get email) instead of misread.
    return f"{_prefix()}:presence:beats"


def _left_key() -> str:
    return f"{_prefix()}:presence:left"


def _member(user_id: int, node: str) -> str:
    return f"{user_id}|{node}"


def _sockets_key(user_id: int) -> str:
    return f"{_prefix()}:sockets:{user_id}"


def socket_name(node: str, n: int) -> str:
    """A socket's name in the registry: sorts by connect time (fixed-width nanoseconds), then by node."""
    return f"{time.time_ns():020d}|{node}|{n}"


def _user(member) -> int:
    return int((member.decode() if isinstance(member, bytes) else member).split("|", 1)[0])


def _users(members) -> set[int]:
    return {_user(m) for m in members}


class Sightings(NamedTuple):
    """What the store knows of some users: when a socket of each was last alive, and who has one open."""

    last_alive: dict[int, float]  # epoch seconds; users never seen are absent
    online: set[int]


class MemoryPresence:
    def __init__(self):
        self._nodes: dict[str, set[int]] = {}
        self._sockets: dict[int, set[str]] = {}

    async def epoch(self) -> str:
        return "memory"  # one process: it cannot restart without taking its sockets with it

    async def announce(self, node: str, *, online, offline) -> None:
        users = self._nodes.setdefault(node, set())
        users.update(online)
        users.difference_update(offline)

    def _online(self) -> set[int]:
        return set().union(*self._nodes.values())

    def connected_users(self) -> int:
        return len(self._online())

    def is_online(self, user_id: int) -> bool:
        return any(user_id in users for users in self._nodes.values())

    def sure_online(self, user_ids) -> set[int]:
        """Users with a socket in this very process: it pushes to them after commit, so they see what it stores."""
        return self._online() & set(user_ids)

    def sightings(self, user_ids) -> Sightings:
        # A socket in this process is alive for as long as the process is, and the process that asks
        # is this one: no moment is late enough to doubt it.
        online = self.sure_online(user_ids)
        return Sightings({user_id: math.inf for user_id in online}, online)

    # Sockets per user (one process: nothing can crash without taking this dict with it)

    async def register_socket(self, user_id: int, name: str, limit: int) -> list[str]:
        names = self._sockets.setdefault(user_id, set())
        names.add(name)
        evicted = sorted(names)[: max(0, len(names) - limit)]
        names.difference_update(evicted)
        return evicted

    async def forget_socket(self, user_id: int, name: str) -> None:
        names = self._sockets.get(user_id)
        if names is not None:
            names.discard(name)
            if not names:
                del self._sockets[user_id]

    async def refresh_sockets(self, sockets: dict[str, int]) -> None:
        for name, user_id in sockets.items():
            self._sockets.setdefault(user_id, set()).add(name)

    def open_sockets(self, user_id: int) -> int:
        return len(self._sockets.get(user_id, ()))


# KEYS[1] the user's sockets; ARGV now, expiry, the new socket, the limit, the key's TTL. Drops
# expired entries, adds the socket, and removes (and returns) the oldest beyond the limit.
_REGISTER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
local names = redis.call('ZRANGE', KEYS[1], 0, -1)
local over = #names - tonumber(ARGV[4])
local evicted = {}
if over > 0 then
  table.sort(names)
  for i = 1, over do
    evicted[i] = names[i]
    redis.call('ZREM', KEYS[1], names[i])
  end
end
return evicted
"""


class RedisPresence:
    def __init__(self, url: str):
        self.url = url
        self._sync_client = redis.Redis.from_url(url)  # thread-safe, pooled: for the API views
        # For the question a change asks inside its transaction (who is offline?): a hung Redis may
        # not hold the change's locks for longer than this.
        self._check_client = redis.Redis.from_url(
            url, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
        )
        self._async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _async(self):
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            # A storm of connects (every portal back after a blip) asks for more commands at once
            # than the default pool's 100 connections: they wait their turn instead of failing.
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, max_connections=ASYNC_CONNECTIONS, timeout=ASYNC_WAIT_SECONDS
            )
            client = self._async_clients[loop] = aioredis.Redis(connection_pool=pool)
        return client

    async def epoch(self) -> str:
        """Which run of the Redis server this is: it changes when Redis restarts (and forgets everything)."""
        return (await self._async().info("server"))["run_id"]

    async def announce(self, node: str, *, online, offline) -> None:
        """Mark users online on `node` as of now (for TTL), or offline there as of now, in one round trip."""
        if not online and not offline:
            return
        now = time.time()
        pipe = self._async().pipeline(transaction=False)
        if online:
            pipe.zadd(_key(), {_member(user_id, node): now for user_id in online})
        if offline:
            pipe.zrem(_key(), *[_member(user_id, node) for user_id in offline])
            pipe.zadd(_left_key(), {str(user_id): now for user_id in offline}, gt=True)
            pipe.zremrangebyscore(_left_key(), "-inf", now - LEFT_KEEP_SECONDS)
        await pipe.execute()

    async def register_socket(self, user_id: int, name: str, limit: int) -> list[str]:
        """Count a new socket of the user; returns the names of their oldest sockets beyond `limit`."""
        now = time.time()
        evicted = await self._async().eval(
            _REGISTER, 1, _sockets_key(user_id), now, now + TTL_SECONDS, name, limit, TTL_SECONDS
        )
        return [n.decode() if isinstance(n, bytes) else n for n in evicted]

    async def forget_socket(self, user_id: int, name: str) -> None:
        await self._async().zrem(_sockets_key(user_id), name)

    async def refresh_sockets(self, sockets: dict[str, int]) -> None:
        """Keep counting these open sockets (name → user) for another TTL, in one round trip."""
        if not sockets:
            return
        expires = time.time() + TTL_SECONDS
        pipe = self._async().pipeline(transaction=False)
        for name, user_id in sockets.items():
            pipe.zadd(_sockets_key(user_id), {name: expires})
            pipe.expire(_sockets_key(user_id), TTL_SECONDS)
        await pipe.execute()

    def open_sockets(self, user_id: int) -> int:
        key = _sockets_key(user_id)
        self._sync_client.zremrangebyscore(key, "-inf", time.time())
        return self._sync_client.zcard(key)

    def _live_members(self):
        self._sync_client.zremrangebyscore(_key(), "-inf", time.time() - TTL_SECONDS)
        return self._sync_client.zrange(_key(), 0, -1)

    def connected_users(self) -> int:
        return len(_users(self._live_members()))

    def is_online(self, user_id: int) -> bool:
        return user_id in _users(self._live_members())

    def sure_online(self, user_ids) -> set[int]:
        """None: an entry may be a killed process's, up to TTL old; only a later heartbeat proves a socket."""
        return set()

    def sightings(self, user_ids) -> Sightings:
        """When each user's sockets were last alive, and who has one open (one round trip, CHECK_TIMEOUT_SECONDS)."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return Sightings({}, set())
        pipe = self._check_client.pipeline(transaction=False)
        pipe.zremrangebyscore(_key(), "-inf", time.time() - TTL_SECONDS)
        pipe.zrange(_key(), 0, -1, withscores=True)
        pipe.zmscore(_left_key(), [str(u) for u in wanted])
        _, members, left = pipe.execute()
        last_alive, online, asked = {}, set(), set(wanted)
        for member, score in members:
            user_id = _user(member)
            if user_id in asked:
                online.add(user_id)
                last_alive[user_id] = max(score, last_alive.get(user_id, score))
        for user_id, score in zip(wanted, left, strict=True):
            if score is not None:
                last_alive[user_id] = max(score, last_alive.get(user_id, score))
        return Sightings(last_alive, online)


_memory = MemoryPresence()
_redis: dict[str, RedisPresence] = {}


def backend():
    """Redis presence when REDIS_URL is set, this process's memory otherwise."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return _memory
    if url not in _redis:
        _redis[url] = RedisPresence(url)
    return _redis[url]
