"""Who has a socket open, across every server process.

With Redis, each open socket is a member `user_id|channel_name` of one sorted set
whose score is the moment it expires; sockets refresh it every HEARTBEAT seconds,
so the sockets of a killed process drop out after TTL seconds. Without Redis (one
process, in-memory layer) a dict in this process is the whole truth.
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


def _member(user_id: int, channel: str) -> str:
    return f"{user_id}|{channel}"


def _users(members) -> set[int]:
    return {int((m.decode() if isinstance(m, bytes) else m).split("|", 1)[0]) for m in members}


class MemoryPresence:
    def __init__(self):
        self._sockets: dict[int, set[str]] = {}

    async def add(self, user_id: int, channel: str) -> None:
        self._sockets.setdefault(user_id, set()).add(channel)

    refresh = add

    async def remove(self, user_id: int, channel: str) -> None:
        channels = self._sockets.get(user_id, set())
        channels.discard(channel)
        if not channels:
            self._sockets.pop(user_id, None)

    def connected_users(self) -> int:
        return len(self._sockets)

    def is_online(self, user_id: int) -> bool:
        return bool(self._sockets.get(user_id))


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

    async def add(self, user_id: int, channel: str) -> None:
        await self._async().zadd(_key(), {_member(user_id, channel): time.time() + TTL_SECONDS})

    refresh = add

    async def remove(self, user_id: int, channel: str) -> None:
        await self._async().zrem(_key(), _member(user_id, channel))

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
