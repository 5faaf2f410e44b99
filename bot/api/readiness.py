"""Live readiness: what `/readyz` reports is probed when asked, not remembered from start-up.

Each dependency the answers need (the store, the search index; Redis when configured, reported but optional: the rate
limits fall back to in-process counting) is probed with a short
timeout in a small thread pool of its own, so a hung dependency neither blocks the event loop nor queues behind
answers. Results are reused for `CACHE_SECONDS` so that several load balancers polling every second cost one probe
each; an outage shows within CACHE_SECONDS + PROBE_TIMEOUT_SECONDS (under the 5 s the operators asked for).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 1.5
CACHE_SECONDS = 1.0

AsyncProbe = Callable[[], Awaitable[Any]]


class Readiness:
    """Static checks (set by whoever knows: the engine build, the LINE channel) plus live probes."""

    def __init__(self, *, timeout: float = PROBE_TIMEOUT_SECONDS, cache_seconds: float = CACHE_SECONDS) -> None:
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.static: dict[str, str] = {}
        self._probes: dict[str, AsyncProbe] = {}
        self._optional: set[str] = set()
        # One thread per probe: a probe stuck in a driver's connect holds only its own thread.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
        self._cached: dict[str, str] = {}
        self._cached_at = float("-inf")
        self._lock = asyncio.Lock()

    def set(self, name: str, status: str) -> None:
        self.static[name] = status

    def add_sync_probe(self, name: str, probe: Callable[[], Any]) -> None:
        """A blocking probe (a driver call): it runs in the readiness pool; raising or timing out is a failure."""

        async def run() -> Any:
            return await asyncio.get_running_loop().run_in_executor(self._pool, probe)

        self._probes[name] = run

    def add_probe(self, name: str, probe: AsyncProbe, *, optional: bool = False) -> None:
        """`optional`: the worker serves without it (in a degraded way), so a failure reports "degraded: ..." and
        does not make the worker unready (taking every worker out of the proxy would be worse)."""
        self._probes[name] = probe
        if optional:
            self._optional.add(name)

    def remove_probe(self, name: str) -> None:
        self._probes.pop(name, None)

    async def checks(self) -> dict[str, str]:
        async with self._lock:
            if time.monotonic() - self._cached_at >= self.cache_seconds:
                names = list(self._probes)
                results = await asyncio.gather(*(self._probe(name, self._probes[name]) for name in names))
                self._cached = {
                    name: f"degraded: {result}" if name in self._optional and result != "ok" else result
                    for name, result in zip(names, results, strict=True)
                }
                self._cached_at = time.monotonic()
        return {**self.static, **self._cached}

    async def _probe(self, name: str, probe: AsyncProbe) -> str:
        try:
            await asyncio.wait_for(probe(), self.timeout)
        except TimeoutError:
            log.warning("readiness: %s did not answer within %.1f s", name, self.timeout)
            return f"unavailable: no answer within {self.timeout:g} s"
        except Exception as exc:
            log.warning("readiness: %s failed: %s", name, type(exc).__name__)
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def is_ready(checks: dict[str, str]) -> bool:
    return bool(checks) and all(status == "ok" or status.startswith("degraded") for status in checks.values())
