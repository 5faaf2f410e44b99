"""A simulated channel worker: claims inbox events, 'processes' them, and records when it held each one.

Used by the inbox race tests in threads (in-process) and as a script in separate processes:
    python store_inbox_worker.py URL WORKER_PREFIX THREADS   -> one JSON record per processed event
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass

from bot.store import Store, open_store

SOURCE = "line"


@dataclass(frozen=True)
class Hold:
    """`worker` had `event_id` of `key` claimed from `start` to `end` (time.monotonic: one clock per host)."""

    worker: str
    key: str
    event_id: str
    pk: int
    start: float
    end: float


def work(store: Store, worker_id: str, *, timeout: float = 60) -> list[Hold]:
    """Claim and finish events until the inbox has nothing pending or claimed."""
    rng = random.Random(worker_id)
    holds: list[Hold] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = store.inbox_claim(SOURCE, worker_id, limit=rng.randint(1, 5))
        claimed_at = time.monotonic()  # after the claim committed
        if not batch:
            if store.inbox_pending_count(SOURCE) == 0:
                break
            time.sleep(0.001)
            continue
        for event in batch:
            time.sleep(rng.random() * 0.002)  # the "work", long enough to interleave with other workers
            released_at = time.monotonic()  # before inbox_done commits, so the real hold ends after this
            holds.append(Hold(worker_id, event.conversation_key, event.event_id, event.pk, claimed_at, released_at))
            store.inbox_done(event.pk)
    return holds


def run_threads(url: str, prefix: str, threads: int, *, stores: int = 2) -> list[Hold]:
    """`threads` workers sharing `stores` store instances (engines), as in one server process."""
    opened = [open_store(url, migrate=False) for _ in range(stores)]
    results: dict[int, list[Hold]] = {}
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            results[i] = work(opened[i % stores], f"{prefix}-{i}")
        except BaseException as exc:  # surfaced below: a dying thread must fail the test, not vanish
            errors.append(exc)

    pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    for store in opened:
        store.close()
    if errors:
        raise errors[0]
    return [hold for i in sorted(results) for hold in results[i]]


if __name__ == "__main__":
    for hold in run_threads(sys.argv[1], sys.argv[2], int(sys.argv[3])):
        print(json.dumps(asdict(hold)))
