"""Both rate limiters for real: the in-process one, and the Redis one against a running Redis (shared by processes)."""

from __future__ import annotations

import asyncio
import secrets
import socket

import pytest
import redis
from faultproxy import FaultProxy
from webhelpers import Visitor

from bot.channels.web.ratelimit import (
    CircuitBreaker,
    MemoryRateLimiter,
    RedisRateLimiter,
    make_rate_limiter,
    retry_after_header,
)


@pytest.fixture
def prefix(redis_url):
    """A key prefix of this test's own, removed afterwards (other runs share the Redis)."""
    value = f"test-ratelimit-{secrets.token_hex(6)}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{value}*"):
        client.delete(key)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_limiter_is_a_fixed_window():
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    assert [await limiter.hit("a", 3, 10) for _ in range(3)] == [None, None, None]
    assert await limiter.hit("a", 3, 10) == pytest.approx(10)
    assert await limiter.test("a", 3, 10) is False and await limiter.test("b", 3, 10) is True  # test() only looks
    assert await limiter.hit("b", 3, 10) is None  # keys are independent
    clock.now += 4
    assert await limiter.hit("a", 3, 10) == pytest.approx(6)  # retrying early does not extend the wait
    clock.now += 6
    assert await limiter.hit("a", 3, 10) is None  # a new window
    assert await limiter.hit("z", 0, 10) == 10  # a zero limit refuses everything


async def test_memory_limiter_forgets_expired_keys_without_a_sweep():
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock, max_keys=10)
    for n in range(10):
        await limiter.hit(f"k{n}", 5, 1)
    clock.now += 2
    await limiter.hit("new", 5, 1)
    assert len(limiter) == 1, "expired windows leave from the front as new requests come"
    for n in range(30):  # all busy: still bounded
        await limiter.hit(f"busy{n}", 5, 100)
    assert len(limiter) <= 10


def test_memory_limiter_is_o1_per_new_key_at_100k_keys():
    # Not a timing assertion: the work per request is counted. The old limiter rescanned the whole table per new key
    # once full; this one touches at most the keys that expired.
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock, max_keys=100_000)
    for n in range(100_000):
        limiter.hit_sync(f"k{n}", 120, 60)
    counters = limiter.storage._counters
    before = dict(counters)
    limiter.hit_sync("one-more", 120, 60)
    assert len(counters) == 100_000
    assert sum(1 for k in before if k not in counters) == 1, "exactly the oldest window left"
    # The oldest client's window was the next to reset; everyone else keeps their count.
    assert all(counters[k] == before[k] for k in list(before)[1:])


def test_retry_after_is_whole_seconds_and_never_zero():
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(4.2) == "5"
    assert retry_after_header(60) == "60"


async def test_redis_limiter_is_a_fixed_window_shared_by_processes(redis_url, prefix):
    one = RedisRateLimiter(redis_url, prefix=prefix)
    two = RedisRateLimiter(redis_url, prefix=prefix)  # another worker process, same Redis
    try:
        assert await one.hit("visitor:x", 3, 1.0) is None
        assert await two.hit("visitor:x", 3, 1.0) is None
        assert await one.hit("visitor:x", 3, 1.0) is None
        wait = await two.hit("visitor:x", 3, 1.0)
        assert wait is not None and 0 < wait <= 1.0
        assert await one.hit("visitor:y", 3, 1.0) is None
        (key,) = [k for k in redis.Redis.from_url(redis_url).scan_iter(match=f"*{prefix}visitor:x*")]
        ttl = redis.Redis.from_url(redis_url).pttl(key)
        assert 0 < ttl <= 1000  # keys expire with their window
        await asyncio.sleep(wait + 0.05)
        assert await one.hit("visitor:x", 3, 1.0) is None
    finally:
        await one.aclose()
        await two.aclose()


async def test_when_redis_is_down_the_limits_are_counted_in_process(caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    limiter = make_rate_limiter(f"redis://127.0.0.1:{port}/0", prefix="x:")
    assert isinstance(limiter, RedisRateLimiter)
    try:
        assert await limiter.hit("a", 2, 60) is None
        assert await limiter.hit("a", 2, 60) is None
        assert await limiter.hit("a", 2, 60) is not None  # still limited: not "fail open"
        assert await limiter.hit("b", 2, 60) is None
    finally:
        await limiter.aclose()
    assert "Redis unavailable" in caplog.text


async def test_a_hung_redis_is_cut_off_by_the_breaker_and_rejoined_when_it_is_back(redis_url, prefix):
    target = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs
    with FaultProxy(target.get("host", "127.0.0.1"), int(target.get("port", 6379))) as proxy:
        clock = FakeClock()
        breaker = CircuitBreaker(failures=2, reset_after=10, clock=clock)
        limiter = RedisRateLimiter(f"redis://127.0.0.1:{proxy.port}/0", prefix=prefix, breaker=breaker)
        try:
            assert await limiter.hit("visitor:a", 3, 60) is None  # on Redis
            proxy.set_mode("hang")  # accepts, never answers
            results = [await limiter.hit("visitor:a", 3, 60) for _ in range(4)]
            assert breaker.state == "open"
            assert results[:3] == [None, None, None] and results[3] is not None  # limited in-process meanwhile
            proxy.set_mode("forward")
            assert breaker.state == "open"  # still not calling Redis ...
            clock.now += 11  # ... until the reset time has passed: one trial call, which succeeds
            assert await limiter.hit("visitor:b", 3, 60) is None
            assert breaker.state == "closed"
            keys = {k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(match=f"*{prefix}visitor:b*")}
            assert keys, "counted in Redis again"
        finally:
            await limiter.aclose()


def test_the_app_uses_redis_when_redis_url_is_set(make_client, redis_url, prefix):
    client = make_client(redis_url=redis_url, web_rate_limit_prefix=prefix, web_rate_limit_visitor=2)
    assert isinstance(client.app.state.web_chat.limiter, RedisRateLimiter)
    visitor = Visitor(client)
    cid = visitor.start()
    assert visitor.send(cid, "残業が続いて疲れている").status_code == 200
    assert visitor.send(cid, "次のステップは？").status_code == 200
    limited = visitor.send(cid, "もっと詳しく")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"] == "rate_limited"
    keys = {k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(match=f"*{prefix}*")}
    assert any(f"{prefix}visitor:" in k for k in keys) and any(f"{prefix}ip:" in k for k in keys)
    # A second app instance on the same Redis sees the same count (several workers behind one load balancer).
    other = make_client(redis_url=redis_url, web_rate_limit_prefix=prefix, web_rate_limit_visitor=2)
    assert Visitor(other, visitor.token).send(cid, "もっと詳しく").status_code == 429


def test_the_app_limits_in_process_without_redis(client):
    assert isinstance(client.app.state.web_chat.limiter, MemoryRateLimiter)
