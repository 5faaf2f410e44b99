"""Store benchmark: inbox accept/claim/done throughput and add_turn/recent_turns latency, SQLite and PostgreSQL.

    .venv/bin/python bench/store_bench.py [--events 2000] [--turns 1000] [--workers 4]

SQLite runs on a temporary file (same pragmas as production: WAL, synchronous=FULL). PostgreSQL runs on a
throw-away database `bot_bench_<random>` created through BOT_BENCH_POSTGRES_URL (default: the local server's
`postgres` database) and dropped afterwards; it is skipped with a note when the server is not reachable.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from functools import partial
from pathlib import Path

import psycopg
from _common import percentile, temporary_postgres_database

from bot.store import Store, open_store

ADMIN_URL = os.environ.get("BOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEXT = "退職した上司から引き継いだ顧客に、前任者と比べられて辛いです。明日どう動けばいいですか。" * 2


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"


def postgres_url() -> AbstractContextManager[str]:
    return temporary_postgres_database(ADMIN_URL, "bot_bench")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def drain(url: str, source: str, workers: int) -> None:
    """`workers` threads (one store each, like separate processes) claim and finish until the inbox is empty."""
    stores = [open_store(url, migrate=False) for _ in range(workers)]

    def work(i: int) -> None:
        store = stores[i]
        while True:
            batch = store.inbox_claim(source, f"w{i}", limit=10)
            if not batch:
                if store.inbox_pending_count(source) == 0:
                    return
                time.sleep(0.001)
                continue
            for event in batch:
                store.inbox_done(event.pk)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        store.close()


def bench_inbox(store: Store, url: str, events: int, workers: int) -> list[str]:
    lines = []
    for n_workers in sorted({1, workers}):
        source = f"bench{n_workers}"

        def accept_all(source: str = source) -> None:
            for i in range(events):
                store.inbox_accept(source, f"ev{i}", f"line:U{i % 50}", '{"type": "message"}')

        accept = timed(accept_all)
        process = timed(partial(drain, url, source, n_workers))
        lines.append(
            f"  inbox, {n_workers} worker(s): accept {events / accept:6.0f} ev/s"
            f" | claim+done {events / process:6.0f} ev/s | accept+claim+done {events / (accept + process):6.0f} ev/s"
        )
    return lines


def bench_turns(store: Store, turns: int) -> list[str]:
    add: list[float] = []
    recent: list[float] = []
    for i in range(turns):
        conversation = f"c{i % 20}"
        start = time.perf_counter()
        store.add_turn(conversation, "user" if i % 2 else "bot", TEXT, answer={"kind": "advice"} if i % 2 else None)
        add.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        store.recent_turns(conversation, 20)
        recent.append((time.perf_counter() - start) * 1000)
    return [
        f"  add_turn:     p50 {percentile(add, 0.50):6.2f} ms | p95 {percentile(add, 0.95):6.2f} ms  ({turns} calls)",
        f"  recent_turns: p50 {percentile(recent, 0.50):6.2f} ms | p95 {percentile(recent, 0.95):6.2f} ms  (limit 20)",
    ]


def run(name: str, url_context: Callable[[], AbstractContextManager[str]], args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        try:
            url = stack.enter_context(url_context())
        except (OSError, psycopg.Error) as exc:  # a missing server is reported, not fatal
            print(f"{name}: skipped ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})")
            return
        store = open_store(url)
        stack.callback(store.close)
        print(f"{name}:", flush=True)
        for line in bench_inbox(store, url, args.events, args.workers) + bench_turns(store, args.turns):
            print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    run("SQLite", sqlite_url, args)
    run("PostgreSQL", postgres_url, args)


if __name__ == "__main__":
    main()
