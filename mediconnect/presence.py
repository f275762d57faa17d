"""Who has a socket open, across every server process.

Each process's hub (mediconnect.hub) announces which users have a socket there. With Redis,
each such user is a member `user_id|node` of one sorted set whose score is the moment it
expires; the hub refreshes all of its members every HEARTBEAT seconds in one command, so the
users of a killed process drop out after TTL seconds. Without Redis (one process, in-memory
layer) a dict in this process is the whole truth.
"""

import asyncio
import time
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings

TTL_SECONDS = getattr(settings, "PRESENCE_TTL_SECONDS", 60)
HEARTBEAT_SECONDS = getattr(settings, "PRESENCE_HEARTBEAT_SECONDS", 20)


def _key() -> str:
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "mediconnect")
    return f"{prefix}:presence"


def _member(user_id: int, node: str) -> str:
    return f"{user_id}|{node}"


def _users(members) -> set[int]:
    return {int((m.decode() if isinstance(m, bytes) else m).split("|", 1)[0]) for m in members}


class MemoryPresence:
    def __init__(self):
        self._nodes: dict[str, set[int]] = {}

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


class RedisPresence:
    def __init__(self, url: str):
        self.url = url
        self._sync_client = redis.Redis.from_url(url)  # thread-safe, pooled: for the API views
        self._async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _async(self):
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = aioredis.Redis.from_url(self.url)
        return client

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

    def _live_members(self):
        self._sync_client.zremrangebyscore(_key(), "-inf", time.time())
        return self._sync_client.zrange(_key(), 0, -1)

    def connected_users(self) -> int:
        return len(_users(self._live_members()))

    def is_online(self, user_id: int) -> bool:
        return user_id in _users(self._live_members())


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
