"""Rate limits on the `limits` library: fixed windows, in-process by default, Redis when `REDIS_URL` is set.

`hit(key, limit, window)` counts one request for `key` and answers `None` when it is within the limit, or the
seconds until the window resets (the `Retry-After`). `test(key, limit, window)` only looks: True while there is room.
Both are O(1): a fixed window is one counter per key.

In-process, the counters live in `WindowMemoryStorage`, a `limits` storage whose keys expire from the front of an
insertion-ordered dict as requests come in (amortised O(1), no sweep of the whole table, no timer thread: the
library's own MemoryStorage rescans every key every 10 ms). Past `max_keys` live keys the oldest is dropped: the
oldest window is the one closest to its reset anyway.

With Redis, `limits`' own async Redis storage (one INCR + EXPIRE per hit, atomic across processes). Redis must never
slow answers down nor switch the limits off: every call is bounded by a short timeout (`REDIS_TIMEOUT_SECONDS`), and
a circuit breaker stops calling a Redis that failed `BREAKER_FAILURES` times in a row for `BREAKER_RESET_SECONDS`,
then lets one call through to see whether it is back. Meanwhile the limits are counted in-process (each worker
limits on its own: looser by the number of workers, but never off), and that is logged when it starts and ends.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from limits import RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter as AsyncFixedWindow
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> float | None:
        """`None` when allowed (and counted); otherwise seconds until the window resets."""
        ...

    async def test(self, key: str, limit: int, window: float) -> bool:
        """True while `key` has room left in its window (nothing is counted)."""
        ...

    async def aclose(self) -> None: ...


def retry_after_header(seconds: float) -> str:
    """`Retry-After` is whole seconds; never 0 (a client would retry at once)."""
    return str(max(1, math.ceil(seconds)))


def _item(limit: int, window: float) -> RateLimitItemPerSecond:
    return RateLimitItemPerSecond(limit, max(1, math.ceil(window)))


class WindowMemoryStorage(Storage):
    """Fixed-window counters for one process: {key: [count, expires_at]} in insertion order."""

    STORAGE_SCHEME = ["career-partner-memory"]  # noqa: RUF012 - the limits base class declares it a plain list

    def __init__(self, *, clock: Callable[[], float] = time.time, max_keys: int = 1_000_000) -> None:
        super().__init__()
        self._clock = clock
        self._max_keys = max_keys
        self._counters: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def _expire(self, now: float) -> None:
        # Windows are created in order, so the oldest are at the front: stop at the first live one.
        counters = self._counters
        while counters:
            key, entry = next(iter(counters.items()))
            if entry[1] > now and len(counters) <= self._max_keys:
                break
            del counters[key]

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = self._clock()
        with self._lock:
            entry = self._counters.get(key)
            if entry is None or entry[1] <= now:
                self._counters.pop(key, None)
                entry = self._counters[key] = [0, now + expiry]
            entry[0] += amount
            self._expire(now)
            return int(entry[0])

    def get(self, key: str) -> int:
        entry = self._counters.get(key)
        return int(entry[0]) if entry is not None and entry[1] > self._clock() else 0

    def get_expiry(self, key: str) -> float:
        entry = self._counters.get(key)
        return entry[1] if entry is not None and entry[1] > self._clock() else self._clock()

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            count = len(self._counters)
            self._counters.clear()
        return count

    def clear(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)

    def __len__(self) -> int:
        return len(self._counters)


class MemoryRateLimiter:
    """One process; sync underneath (O(1) per call, nothing to wait for), async to fit the interface."""

    def __init__(self, *, clock: Callable[[], float] = time.time, max_keys: int = 1_000_000) -> None:
        self._clock = clock
        self.storage = WindowMemoryStorage(clock=clock, max_keys=max_keys)
        self._strategy = FixedWindowRateLimiter(self.storage)

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        return self.hit_sync(key, limit, window)

    def hit_sync(self, key: str, limit: int, window: float) -> float | None:
        if limit <= 0:
            return window
        item = _item(limit, window)
        if self._strategy.hit(item, key):
            return None
        return max(0.0, self._strategy.get_window_stats(item, key).reset_time - self._clock())

    async def test(self, key: str, limit: int, window: float) -> bool:
        return limit > 0 and self._strategy.test(_item(limit, window), key)

    def __len__(self) -> int:
        return len(self.storage)

    async def aclose(self) -> None:
        return None


REDIS_TIMEOUT_SECONDS = 0.25
BREAKER_FAILURES = 3
BREAKER_RESET_SECONDS = 10.0


class CircuitBreaker:
    """closed (calls go through) -> `failures` failures in a row -> open (no calls) for `reset_after` seconds ->
    half-open (one trial call: success closes, failure opens again)."""

    def __init__(
        self,
        *,
        failures: int = BREAKER_FAILURES,
        reset_after: float = BREAKER_RESET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.reset_after = reset_after
        self._clock = clock
        self._failed = 0
        self._open_until: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        if self._open_until is None:
            return "closed"
        return "open" if self._clock() < self._open_until or self._trial else "half-open"

    def allow(self) -> bool:
        if self._open_until is None:
            return True
        if self._clock() < self._open_until or self._trial:
            return False
        self._trial = True  # half-open: this caller is the trial
        return True

    def success(self) -> bool:
        """Record a success; True when it closed an open breaker."""
        was_open = self._open_until is not None
        self._failed, self._open_until, self._trial = 0, None, False
        return was_open

    def failure(self) -> bool:
        """Record a failure; True when it opened the breaker."""
        self._failed += 1
        reopening = self._trial
        self._trial = False
        if reopening or self._failed >= self.failures:
            was_closed = self._open_until is None
            self._open_until = self._clock() + self.reset_after
            return was_closed
        return False


class RedisRateLimiter:
    """Shared by every process that uses the same Redis and key prefix; in-process while Redis is unavailable."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "career-partner:ratelimit:",
        timeout: float = REDIS_TIMEOUT_SECONDS,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        from limits.aio.storage import RedisStorage

        self.prefix = prefix
        self.timeout = timeout
        async_url = url if url.startswith("async+") else "async+" + url
        self.storage = RedisStorage(
            async_url, implementation="redispy", socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._strategy = AsyncFixedWindow(self.storage)
        self.breaker = breaker or CircuitBreaker()
        self.fallback = MemoryRateLimiter()

    async def _redis(self, call: Any) -> tuple[bool, Any]:
        """(True, result) from Redis, or (False, None) when it failed or the breaker is open."""
        if not self.breaker.allow():
            call.close()  # the coroutine is never awaited
            return False, None
        try:
            # The socket timeouts bound each read; this bounds the whole call (connect, retries, pool waits).
            result = await asyncio.wait_for(call, self.timeout * 2)
        except Exception as exc:
            if self.breaker.failure():
                log.warning(
                    "rate limiter: Redis unavailable (%s); counting in this process for %.0f s, then trying again",
                    type(exc).__name__,
                    self.breaker.reset_after,
                )
            return False, None
        if self.breaker.success():
            log.info("rate limiter: Redis is back; limits are shared again")
        return True, result

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        if limit <= 0:
            return window
        item = _item(limit, window)
        full_key = self.prefix + key
        ok, allowed = await self._redis(self._strategy.hit(item, full_key))
        if not ok:
            return await self.fallback.hit(key, limit, window)
        if allowed:
            return None
        ok, stats = await self._redis(self._strategy.get_window_stats(item, full_key))
        return window if not ok or stats is None else max(0.0, stats.reset_time - time.time())

    async def test(self, key: str, limit: int, window: float) -> bool:
        if limit <= 0:
            return False
        ok, room = await self._redis(self._strategy.test(_item(limit, window), self.prefix + key))
        return bool(room) if ok else await self.fallback.test(key, limit, window)

    async def ping(self) -> None:
        if not await self.storage.check():
            raise ConnectionError("Redis did not answer")

    async def aclose(self) -> None:
        return None


def make_rate_limiter(redis_url: str | None, *, prefix: str) -> RateLimiter:
    return RedisRateLimiter(redis_url, prefix=prefix) if redis_url else MemoryRateLimiter()
