"""The in-process rate limiter per request at 100k live keys (bot.channels.web.ratelimit.MemoryRateLimiter).

Fills the limiter with `--keys` clients inside one window, then times `--requests` hits of new keys (each evicts the
oldest when full) and of existing keys. Prints p50/p99 in microseconds. Before issue 16 a new key at 100k keys cost
19 ms at the median (a sweep of the whole table on the event loop).

    .venv/bin/python bench/ratelimit_bench.py [--keys 100000] [--requests 20000]
"""

from __future__ import annotations

import argparse
import time

from bot.channels.web.ratelimit import MemoryRateLimiter
from bot.retrieval.evaluate import percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    limiter = MemoryRateLimiter(max_keys=args.keys)
    for n in range(args.keys):
        limiter.hit_sync(f"ip:10.{n}", 120, 60)
    for label, key in (("new key (table full)", "new:{}"), ("existing key", "ip:10.{}")):
        times = []
        for n in range(args.requests):
            started = time.perf_counter()
            limiter.hit_sync(key.format(n), 120, 60)
            times.append((time.perf_counter() - started) * 1e6)
        print(
            f"{label} at {len(limiter)} keys: p50 {percentile(times, 0.5):.1f} µs, p99 {percentile(times, 0.99):.1f} µs"
        )


if __name__ == "__main__":
    main()
