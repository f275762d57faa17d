"""Who has a socket open, across every server process.

Each process's hub (mediconnect.realtime.hub) announces which users have a socket there. With Redis,
each such user is a member `user_id|node` of one sorted set whose score is the moment it
expires; the hub refreshes all of its members every HEARTBEAT seconds in one command, so the
users of a killed process drop out after TTL seconds. Without Redis (one process, in-memory
layer) a dict in this process is the whole truth.

The same store counts each user's open sockets, to hold them to WS_MAX_SOCKETS_PER_USER across
processes. With Redis, a user's sockets are the members of one sorted set (`<prefix>:sockets:<id>`),
each named `<connect time>|<node>|<n>` and scored by the moment it expires; the hub refreshes its
sockets with the presence heartbeat, so a killed process's sockets stop counting after TTL
seconds. Registering a socket and picking who is over the limit is one atomic script: the oldest
by connect time go, whichever process holds them.
"""

import asyncio
import time
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings

TTL_SECONDS = getattr(settings, "PRESENCE_TTL_SECONDS", 60)
HEARTBEAT_SECONDS = getattr(settings, "PRESENCE_HEARTBEAT_SECONDS", 20)
# Redis connections of a process's presence store, and how long a command waits for a free one.
ASYNC_CONNECTIONS = 50
ASYNC_WAIT_SECONDS = 20
# How long a change (a cancellation deciding who gets an email) waits for Redis to say who is online.
CHECK_TIMEOUT_SECONDS = 0.5


def _prefix() -> str:
    return settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "mediconnect")


def _key() -> str:
    return f"{_prefix()}:presence"


def _member(user_id: int, node: str) -> str:
    return f"{user_id}|{node}"


def _sockets_key(user_id: int) -> str:
    return f"{_prefix()}:sockets:{user_id}"


def socket_name(node: str, n: int) -> str:
    """A socket's name in the registry: sorts by connect time (fixed-width nanoseconds), then by node."""
    return f"{time.time_ns():020d}|{node}|{n}"


def _users(members) -> set[int]:
    return {int((m.decode() if isinstance(m, bytes) else m).split("|", 1)[0]) for m in members}


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

    def online_among(self, user_ids) -> set[int]:
        return self._online() & set(user_ids)

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
        """Mark users online (until TTL from now) or offline on `node`, in one round trip."""
        pipe = self._async().pipeline(transaction=False)
        if online:
            expires = time.time() + TTL_SECONDS
            pipe.zadd(_key(), {_member(user_id, node): expires for user_id in online})
        if offline:
            pipe.zrem(_key(), *[_member(user_id, node) for user_id in offline])
        if online or offline:
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
        self._sync_client.zremrangebyscore(_key(), "-inf", time.time())
        return self._sync_client.zrange(_key(), 0, -1)

    def connected_users(self) -> int:
        return len(_users(self._live_members()))

    def is_online(self, user_id: int) -> bool:
        return user_id in _users(self._live_members())

    def online_among(self, user_ids) -> set[int]:
        """Which of these users have a socket open: one look at the store, within CHECK_TIMEOUT_SECONDS."""
        pipe = self._check_client.pipeline(transaction=False)
        pipe.zremrangebyscore(_key(), "-inf", time.time())
        pipe.zrange(_key(), 0, -1)
        return _users(pipe.execute()[1]) & set(user_ids)


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


def online_among(user_ids) -> set[int]:
    """Which of these users have a socket open on any server process (settings.PRESENCE_CHECK names this)."""
    return backend().online_among(user_ids)
