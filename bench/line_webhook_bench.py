"""LINE webhook benchmark: acknowledgement latency and answers per second, one server process, 50 concurrent users.

    .venv/bin/python bench/line_webhook_bench.py [--users 50] [--messages 4] [--concurrency 8] [--postgres [URL]]

Starts the fake LINE Messaging API of the tests (it validates every request against LINE's OpenAPI spec and
limits) and one real `bot serve` process (one uvicorn worker) pointed at it, on a temporary database, reusing the
repo's embedding model and search index (`make prepare`). Each simulated user holds a conversation: sends a signed
text webhook, waits until the answer reaches the fake LINE server, sends the next. The database is SQLite (the
default); `--postgres` runs the same on a throw-away PostgreSQL database (created through the given server URL,
default BOT_BENCH_POSTGRES_URL or the local `postgres` database, dropped afterwards). Prints:
- webhook acknowledgement latency (signed POST -> 200) p50/p99,
- answer latency (POST -> answer accepted by the fake LINE server) p50/p99,
- messages answered per second over the run,
and checks that nothing was lost or duplicated (every message answered exactly once, the inbox drained, no request
rejected by the fake). Exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "line"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import line_events as ev  # noqa: E402
from _common import percentile, temporary_postgres_database  # noqa: E402
from fake_line_api import FakeLine  # noqa: E402

SECRET = "bench-channel-secret-0123456789ab"
TOKEN = "bench-access-token"

WORRIES = [
    "上司が退職して顧客を引き継いだけど、引き継ぎが2週間しかなくて不安です",
    "残業が多くて毎日終電です。休日もチャット対応があって疲れました",
    "上司に毎日みんなの前で怒鳴られます。どうしたらいいですか",
    "転職すべきか、今の会社に残るべきか迷っています",
    "評価面談で低い評価をつけられて納得できません",
    "初めて部下を持つことになり、うまくまとめられるか不安です",
    "ミスが続いて上司やお客様の信頼を失ってしまいました",
    "お客様の理不尽なクレームに心がすり減っています",
]
FOLLOW_UPS = ["もっと詳しく", "次のステップは？", "成功事例を教えて", "専門家に相談したい"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database(data_dir: Path, postgres: str | None) -> Iterator[str]:
    if postgres is None:
        yield f"sqlite:///{data_dir / 'bot.sqlite3'}"
        return
    with temporary_postgres_database(postgres, "bot_line_bench") as url:
        yield url


def unfinished_events(url: str) -> int:
    query = "SELECT COUNT(*) FROM inbox_events WHERE status != 'done'"
    if url.startswith("sqlite"):
        with sqlite3.connect(make_url(url).database or "") as conn:
            return int(conn.execute(query).fetchone()[0])
    plain = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


def start_server(
    fake: FakeLine, data_dir: Path, database_url: str, port: int, concurrency: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "CHROMA_"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "LINE_API_BASE_URL": fake.url,
            "LINE_WORKER_CONCURRENCY": str(concurrency),
            "DATA_DIR": str(data_dir),
            "MODELS_DIR": str(ROOT / "data" / "models"),
            "CHROMA_PATH": str(ROOT / "data" / "chroma"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_LEVEL": "warning",
        }
    )
    bot = Path(sys.executable).parent / "bot"
    command = [str(bot), "serve"] if bot.exists() else [sys.executable, "-m", "bot", "serve"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, cwd=data_dir, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bot serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"bot serve not ready after {timeout} s:\n{log.read_text()[-3000:]}")


async def user_session(
    client: httpx.AsyncClient,
    url: str,
    fake: FakeLine,
    user: str,
    messages: int,
    acks: list[float],
    answers: list[float],
    rng: random.Random,
) -> None:
    await asyncio.sleep(rng.random())  # users do not all start in the same millisecond
    for n in range(messages):
        text = rng.choice(WORRIES) if n == 0 else FOLLOW_UPS[(n - 1) % len(FOLLOW_UPS)]
        raw = ev.body(ev.text(user, text, reply_token=fake.issue_reply_token(user, ttl=120)), validate=False)
        started = time.perf_counter()
        response = await client.post(
            f"{url}/line/webhook",
            content=raw,
            headers={"X-Line-Signature": ev.sign(raw, SECRET), "Content-Type": "application/json"},
        )
        acks.append(time.perf_counter() - started)
        if response.status_code != 200 or response.json().get("accepted") != 1:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text}")
        while len(fake.delivered_to(user)) < n + 1:
            if time.perf_counter() - started > 120:
                raise RuntimeError(f"no answer within 120 s for {user} message {n + 1}")
            await asyncio.sleep(0.02)
        answers.append(time.perf_counter() - started)


async def run(url: str, fake: FakeLine, users: list[str], messages: int) -> tuple[list[float], list[float], float]:
    acks: list[float] = []
    answers: list[float] = []
    rng = random.Random(5)
    limits = httpx.Limits(max_connections=len(users), max_keepalive_connections=len(users))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(user_session(client, url, fake, u, messages, acks, answers, rng) for u in users))
        elapsed = time.perf_counter() - started
    return acks, answers, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--messages", type=int, default=4, help="messages per user (a conversation)")
    parser.add_argument("--concurrency", type=int, default=8, help="LINE_WORKER_CONCURRENCY of the server")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=os.environ.get("BOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        default=None,
        help="use a throw-away PostgreSQL database created through this server URL",
    )
    args = parser.parse_args()

    fake = FakeLine(TOKEN)
    fake.start()
    with tempfile.TemporaryDirectory(prefix="line-bench-") as tmp, database(Path(tmp), args.postgres) as url_db:
        data_dir = Path(tmp)
        port = free_port()
        log = data_dir / "serve.log"
        boot = time.perf_counter()
        proc = start_server(fake, data_dir, url_db, port, args.concurrency, log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc, log)
            backend = "PostgreSQL" if args.postgres else "SQLite"
            effective = min(args.concurrency, 2 * (os.cpu_count() or 1))
            print(
                f"bot serve ready in {time.perf_counter() - boot:.1f} s (one process, {backend}, "
                f"LINE_WORKER_CONCURRENCY={args.concurrency}, effective {effective} on {os.cpu_count()} CPU cores)"
            )
            # One warm-up conversation outside the measurement (first inference loads lazily).
            warm = ev.user_id()
            asyncio.run(run(url, fake, [warm], 1))
            fake.reset()
            users = [ev.user_id() for _ in range(args.users)]
            acks, answers, elapsed = asyncio.run(run(url, fake, users, args.messages))
            time.sleep(1.0)  # anything late (a duplicate) has had its chance to arrive
            total = args.users * args.messages
            per_user = {u: len(fake.delivered_to(u)) for u in users}
            lost = sum(max(0, args.messages - n) for n in per_user.values())
            duplicated = sum(max(0, n - args.messages) for n in per_user.values())
            unfinished = unfinished_events(url_db)
            replies = sum(1 for d in fake.snapshot() if d.method == "reply")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            fake.stop()

    print(f"{args.users} concurrent users x {args.messages} messages = {total} messages in {elapsed:.1f} s")
    print(
        f"webhook ack latency: p50 {percentile(acks, 0.50) * 1000:.1f} ms, p99 {percentile(acks, 0.99) * 1000:.1f} ms, "
        f"max {max(acks) * 1000:.1f} ms"
    )
    print(
        f"answer latency (webhook -> reply at LINE): p50 {percentile(answers, 0.50):.2f} s, "
        f"p99 {percentile(answers, 0.99):.2f} s"
    )
    print(f"messages answered per second: {total / elapsed:.2f}")
    print(
        f"delivered by reply: {replies}/{total}; lost: {lost}; duplicated: {duplicated}; "
        f"unfinished inbox events: {unfinished}; requests the fake LINE rejected: {len(fake.problems)}"
    )
    ok = lost == 0 and duplicated == 0 and unfinished == 0 and not fake.problems
    print("OK: nothing lost or duplicated" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
