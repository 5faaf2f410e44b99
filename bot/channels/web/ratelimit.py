"""Sliding-window rate limiting behind one interface: in-process by default, Redis when `REDIS_URL` is set.

`hit(key, limit, window)` records one request for `key` and answers `None` when it is allowed, or the number of
seconds after which it would be (the `Retry-After`). Refused requests are not recorded, so a client that keeps
retrying too early does not extend its own wait. The Redis limiter runs one Lua script per hit (atomic across
processes, clock from the Redis server); when Redis cannot be reached it lets the request through and logs it: the
limits protect the service, they must not take it down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from typing import Any, Protocol

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> float | None:
        """`None` when allowed (and counted); otherwise seconds until a slot frees up."""
        ...

    async def aclose(self) -> None: ...


def retry_after_header(seconds: float) -> str:
    """`Retry-After` is whole seconds; never 0 (a client would retry at once)."""
    return str(max(1, math.ceil(seconds)))


class MemoryRateLimiter:
    """One process: a deque of timestamps per key. Idle keys are swept so memory stays bounded."""

    def __init__(self, *, clock: Any = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._windows: dict[str, float] = {}
        self._lock = threading.Lock()

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        return self.hit_sync(key, limit, window)

    def hit_sync(self, key: str, limit: int, window: float) -> float | None:
        if limit <= 0:
            return window
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self._max_keys:
                    self._sweep(now)
                hits = self._hits[key] = deque()
            self._windows[key] = window
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return hits[0] + window - now
            hits.append(now)
            return None

    def _sweep(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self._windows.get(k, 0)]:
            del self._hits[key]
            self._windows.pop(key, None)
        while len(self._hits) >= self._max_keys:  # everything is busy: forget the oldest keys rather than grow
            oldest = next(iter(self._hits))
            del self._hits[oldest]
            self._windows.pop(oldest, None)

    def __len__(self) -> int:
        return len(self._hits)

    async def aclose(self) -> None:
        return None


# KEYS[1] the sorted set of this key's hits (score: time in ms); ARGV: window ms, limit, a unique member.
# Returns -1 when allowed, otherwise the milliseconds until the oldest hit leaves the window.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class RedisRateLimiter:
    """Shared by every process that uses the same Redis and key prefix."""

    def __init__(self, url: str, *, prefix: str = "career-partner:ratelimit:", timeout: float = 1.0) -> None:
        import redis.asyncio as aioredis

        self.prefix = prefix
        self._redis = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._script = self._redis.register_script(_SLIDING_WINDOW)
        self._warned = False

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        if limit <= 0:
            return window
        window_ms = max(1, int(window * 1000))
        try:
            result = await self._script(keys=[self.prefix + key], args=[window_ms, limit, uuid.uuid4().hex])
        except Exception as exc:  # fail open: see the module docstring
            if not self._warned:
                log.warning("rate limiter: Redis unavailable, requests are not limited: %s", type(exc).__name__)
                self._warned = True
            return None
        self._warned = False
        value = int(result)
        return None if value < 0 else value / 1000

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(redis_url: str | None, *, prefix: str) -> RateLimiter:
    return RedisRateLimiter(redis_url, prefix=prefix) if redis_url else MemoryRateLimiter()
