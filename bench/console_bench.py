"""Console benchmark: page latency with 10,000 queued conversations, and the queue's update delay; SQLite and
PostgreSQL.

    .venv/bin/python bench/console_bench.py [--conversations 10000] [--runs 30] [--backend sqlite|postgres|both]

Seeds the store directly (conversations with four turns each, a handoff row, two message-log rows; a tenth are
taken by the operator, a third closed), then drives the real app in-process (FastAPI TestClient, the real engine on
the repo's index) as a signed-in admin. "update delay" is the time from a user's message committed by the engine to
the queue's version endpoint reporting the change (the server's part); a console page sees it at its next poll, so
add up to CONSOLE_POLL_SECONDS plus one table fetch. PostgreSQL runs on a throw-away database created through
BOT_BENCH_POSTGRES_URL and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import ROOT, summary, temporary_postgres_database
from fastapi.testclient import TestClient
from sqlalchemy import insert

from bot.api.main import create_app
from bot.config import Settings
from bot.console.auth import Auth
from bot.dialogue.factory import build_engine
from bot.store import open_store, schema

ADMIN_URL = os.environ.get("BOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "benchmark password 1234"
TOPICS = ["handover", "overwork", "boss-conflict", "job-change-decision", "coworker-relations"]


def seed(store, n: int) -> str:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    turns, handoffs, log = [], [], []
    for i in range(n):
        cid = f"web:bench{i:06d}" if i % 2 else f"line:user:Ubench{i:06d}"
        at = now - timedelta(minutes=n - i)
        for j, role in enumerate(("user", "bot", "user", "bot")):
            turns.append(
                {
                    "conversation_id": cid,
                    "role": role,
                    "text": f"引き継ぎで困っています（{i}-{j}）。取引先の対応が追いつきません。",
                    "answer": {"kind": "advice", "safety_tier": "none"} if role == "bot" else None,
                    "channel_message_id": None,
                    "created_at": at,
                }
            )
        status = "closed" if i % 3 == 0 else ("active" if i % 10 == 1 else "waiting")
        handoffs.append(
            {
                "conversation_id": cid,
                "channel": cid.split(":", 1)[0],
                "status": status,
                "reason": "user",
                "topic": TOPICS[i % len(TOPICS)],
                "summary": "上司が急に辞めて、引き継ぎ2週間で取引先をほぼ全部任された",
                "steps_done": i % 4,
                "escalation": None,
                "assigned_to": "bench" if status == "active" else None,
                "note": None,
                "outcome": "closed" if status == "closed" else None,
                "unread": i % 3,
                "created_at": at,
                "updated_at": at,
                "closed_at": at if status == "closed" else None,
            }
        )
        for kind in ("advice", "handoff"):
            log.append(
                {
                    "conversation_id": cid,
                    "user_turn_id": None,
                    "channel": cid.split(":", 1)[0],
                    "kind": kind,
                    "topic": TOPICS[i % len(TOPICS)],
                    "escalation": None,
                    "created_at": at,
                }
            )
    with store.transaction() as tx:
        for table, rows in ((schema.turns, turns), (schema.handoffs, handoffs), (schema.message_log, log)):
            for start in range(0, len(rows), 2000):
                tx.conn.execute(insert(table), rows[start : start + 2000])
    return "web:bench000001"


def timed(call: Callable[[], object], runs: int) -> list[float]:
    values = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        values.append((time.perf_counter() - started) * 1000)
    return values


def run(url: str, n: int, runs: int) -> None:
    settings = Settings(DATA_DIR=ROOT / "data", DATABASE_URL=url)
    store = open_store(url)
    started = time.perf_counter()
    sample = seed(store, n)
    print(f"  seeded {n} conversations in {time.perf_counter() - started:.1f} s")
    Auth(store).add_operator("bench", PASSWORD, "admin")
    services = build_engine(settings, store=store)
    with TestClient(create_app(settings, services=services), follow_redirects=False) as client:
        page = client.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert (
            client.post("/console/login", data={"csrf": csrf, "username": "bench", "password": PASSWORD}).status_code
            == 303
        )

        def get(path: str) -> Callable[[], object]:
            def call() -> object:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
                return response

            return call

        for name, path in [
            ("queue page (waiting, 50 rows)", "/console/queue?tab=waiting"),
            ("queue page (closed, page 20)", "/console/queue?tab=closed&page=20"),
            ("queue table (live refresh)", "/console/queue/table?tab=waiting"),
            ("queue version (poll)", "/console/queue/version"),
            ("conversation view (audited)", f"/console/c/{sample}"),
            ("conversation version (poll)", f"/console/c/{sample}/version"),
        ]:
            print("  " + summary(name, timed(get(path), runs)))
        print("  " + summary("insights page (30 days)", timed(get("/console/insights?days=30"), max(3, runs // 5))))
        print("  " + summary("insights CSV (daily)", timed(get("/console/insights/daily.csv"), max(3, runs // 5))))

        engine = services.engine
        delays = []
        for i in range(max(5, runs // 3)):
            before = client.get("/console/queue/version").json()["version"]
            cid = f"web:bench{(6 * i + 5):06d}"  # web, and never a closed one (every third is)
            sent = time.perf_counter()
            reply = engine.handle(cid, f"まだですか（{i}）")  # waiting for a person: held, stored, the queue stamped
            deadline = time.perf_counter() + 10
            while client.get("/console/queue/version").json()["version"] == before:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"the queue version did not change (held={reply.held})")
                time.sleep(0.005)
            delays.append((time.perf_counter() - sent) * 1000)
        print("  " + summary("update delay (message committed -> version changed)", delays))
        print(
            f"  a console page shows it at its next poll: + up to {settings.console_poll_seconds:.0f} s "
            f"(CONSOLE_POLL_SECONDS) + one table fetch (p50 above); mean wait {statistics.mean(delays):.1f} ms "
            "server side"
        )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    backends: list[tuple[str, Callable[[], AbstractContextManager[str]]]] = []
    if args.backend in ("sqlite", "both"):
        tmp = tempfile.mkdtemp(prefix="console-bench-")
        backends.append(("sqlite", lambda: nullcontext(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")))
    if args.backend in ("postgres", "both"):
        backends.append(("postgres", lambda: temporary_postgres_database(ADMIN_URL, "bot_console_bench")))
    for name, make in backends:
        print(f"{name}:")
        with make() as url:
            run(url, args.conversations, args.runs)


if __name__ == "__main__":
    main()
