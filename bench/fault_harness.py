"""Fault harness: the scale-out topology with real services, faults injected, and what users would notice counted.

    nice -n 10 .venv/bin/python bench/fault_harness.py            # every scenario (about 6 minutes)
    .venv/bin/python bench/fault_harness.py --short               # the CI subset (tests/test_fault_harness.py)
    .venv/bin/python bench/fault_harness.py --only burst,pg       # some scenarios

The topology (the compose file's, with local processes): a throw-away PostgreSQL database, Redis, a `chroma run`
server holding a copy of the repo's index (`make prepare` builds it), two `bot serve` workers, and the tests' fake
LINE Messaging API (it validates every request against LINE's OpenAPI spec). PostgreSQL, Redis and Chroma are reached
through TCP fault proxies (tests/faultproxy.py): a scenario takes a service away ("down": connections cut and
refused; "hang": accepted, silent) without stopping the shared server itself. The harness plays LINE's platform: a
webhook answered with anything but 200 is redelivered (same webhookEventId) to a worker, with backoff, as LINE does
with redelivery on, and a load balancer in front of two workers would.

Each scenario prints one line: lost (a message never answered), duplicated (answered twice), failed (an apology
instead of an answer, a web 5xx other than 503, a web answer that never came), and its own numbers (ack latency,
takeover time, readiness flips). Exit status 1 when any lost/duplicated/failed count is not zero. Timings are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "line"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import line_events as ev  # noqa: E402
from _common import percentile, temporary_postgres_database  # noqa: E402
from chromaserver import chroma_server, copy_active_index, copy_collection, free_port, http_client  # noqa: E402
from fake_line_api import FakeLine  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

SECRET = "harness-channel-secret-0123456789"
TOKEN = "harness-access-token"
ADMIN_URL = os.environ.get("BOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
WORRY = "前任が辞めて引き継ぎが2週間しかなく、顧客のことが何もわかりません"
UNLIMITED = "100000"


# ----- the topology ------------------------------------------------------------------------------------------------


@dataclass
class Worker:
    name: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    def start(self) -> None:
        bot = Path(sys.executable).parent / "bot"
        command = [str(bot), "serve"] if bot.exists() else [sys.executable, "-m", "bot", "serve"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            if self.ready():
                return
            time.sleep(0.3)
        raise SystemExit(f"{self.name} not ready after {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Topology:
    fake: FakeLine
    workers: list[Worker]
    database: FaultProxy
    redis: FaultProxy
    chroma: FaultProxy
    chroma_port: int
    database_url: str
    tmp: Path

    def live_workers(self) -> list[Worker]:
        return [w for w in self.workers if w.alive]


def worker_env(name: str, tmp: Path, fake: FakeLine, database_url: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "CHROMA_", "REDIS_"))}
    data_dir = tmp / name
    data_dir.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "DATABASE_URL": database_url,
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "LINE_API_BASE_URL": fake.url,
            "LINE_REQUEST_TIMEOUT": "5",
            "DATA_DIR": str(data_dir),
            "MODELS_DIR": str(ROOT / "data" / "models"),
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "LOG_LEVEL": os.environ.get("FAULT_HARNESS_LOG_LEVEL", "warning"),
            "WEB_RATE_LIMIT_VISITOR": UNLIMITED,
            "WEB_RATE_LIMIT_IP": UNLIMITED,
            "WEB_RATE_LIMIT_IP_MESSAGES": UNLIMITED,
            "WEB_RATE_LIMIT_IP_CONVERSATIONS": UNLIMITED,
            "WEB_RATE_LIMIT_IP_INVALID": UNLIMITED,
            **extra,
        }
    )
    # Extra settings for every worker, e.g. FAULT_HARNESS_ENV="LINE_WORKER_CONCURRENCY=2 LOG_LEVEL=info".
    for pair in os.environ.get("FAULT_HARNESS_ENV", "").split():
        key, _, value = pair.partition("=")
        env[key] = value
    return env


@contextmanager
def topology(tmp: Path, workers: int = 2) -> Iterator[Topology]:
    from sqlalchemy.engine import make_url

    from bot.config import Settings
    from bot.retrieval.index import make_chroma_client

    with ExitStack() as stack:
        fake = FakeLine(TOKEN)
        fake.start()
        stack.callback(fake.stop)
        admin_db = stack.enter_context(temporary_postgres_database(ADMIN_URL, "bot_fault_harness"))
        target = make_url(admin_db)
        database = stack.enter_context(FaultProxy(target.host or "127.0.0.1", target.port or 5432))
        database_url = target.set(host="127.0.0.1", port=database.port).render_as_string(hide_password=False)
        redis_target = make_url(REDIS)
        redis = stack.enter_context(FaultProxy(redis_target.host or "127.0.0.1", redis_target.port or 6379))
        chroma_port = stack.enter_context(chroma_server(tmp / "chroma-server"))
        local = make_chroma_client(Settings(DATA_DIR=ROOT / "data"))
        copy_active_index(local, http_client(chroma_port))
        chroma = stack.enter_context(FaultProxy("127.0.0.1", chroma_port))
        extra = {
            "CHROMA_HOST": "127.0.0.1",
            "CHROMA_PORT": str(chroma.port),
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "WEB_RATE_LIMIT_PREFIX": f"fault-harness-{secrets.token_hex(4)}:",
        }
        started = [
            Worker(f"worker{i}", worker_env(f"worker{i}", tmp, fake, database_url, extra), tmp / f"worker{i}.log")
            for i in range(workers)
        ]
        boot = time.perf_counter()
        for worker in started:
            worker.start()
            stack.callback(worker.kill, signal.SIGTERM)
        for worker in started:
            worker.wait_ready()
        print(f"topology up in {time.perf_counter() - boot:.0f} s: {workers} workers, PostgreSQL, Redis, chroma run")
        yield Topology(fake, started, database, redis, chroma, chroma_port, database_url, tmp)


# ----- LINE's side: webhooks with redelivery, and what users received ---------------------------------------------


@dataclass
class Outcome:
    name: str
    lost: int = 0
    duplicated: int = 0
    failed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lost == self.duplicated == self.failed == 0

    def line(self) -> str:
        head = f"{self.name:<22} lost={self.lost} duplicated={self.duplicated} failed={self.failed}"
        return "  ".join([head, *self.notes])


class Platform:
    """Posts signed webhooks like LINE: to a worker (round robin over the live ones), redelivered on failure."""

    def __init__(self, top: Topology) -> None:
        self.top = top
        self.acks: list[float] = []
        self.refused = 0  # webhook answers other than 200 (each one redelivered)
        self.sent: dict[str, int] = {}  # user -> messages that expect an answer
        self._turn = 0
        self._lock = threading.Lock()

    def event(self, user: str, text: str = WORRY) -> dict[str, Any]:
        with self._lock:
            self.sent[user] = self.sent.get(user, 0) + 1
        return ev.text(user, text, reply_token=self.top.fake.issue_reply_token(user, ttl=60))

    def post(self, *events: dict[str, Any], worker: Worker | None = None, budget: float = 180.0) -> None:
        raw = ev.body(*events, validate=False)
        headers = {"X-Line-Signature": ev.sign(raw, SECRET), "Content-Type": "application/json"}
        deadline = time.monotonic() + budget
        delay = 0.5
        while True:
            target = worker if worker is not None and worker.alive else self._next()
            started = time.perf_counter()
            try:
                response = httpx.post(f"{target.url}/line/webhook", content=raw, headers=headers, timeout=10)
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            if status == 200:
                with self._lock:
                    self.acks.append(time.perf_counter() - started)
                return
            with self._lock:
                self.refused += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"webhook never accepted within {budget:.0f} s (last status {status})")
            worker = None  # the redelivery may go to any worker
            time.sleep(delay)
            delay = min(delay * 2, 8.0)

    def _next(self) -> Worker:
        live = self.top.live_workers()
        with self._lock:
            self._turn += 1
            return live[self._turn % len(live)]

    def settle(self, name: str, *, timeout: float = 180.0, quiet: float = 3.0) -> Outcome:
        """Wait until every user has as many answers as messages (or the timeout), then a quiet period for
        duplicates; count lost, duplicated and apologies."""
        from bot.channels.line.texts import APOLOGY

        fake = self.top.fake
        fake.wait_for(lambda: all(len(fake.delivered_to(u)) >= n for u, n in self.sent.items()), timeout)
        time.sleep(quiet)
        outcome = Outcome(name)
        for user, expected in self.sent.items():
            deliveries = fake.delivered_to(user)
            apologies = sum(1 for d in deliveries if APOLOGY in json.dumps(d.messages, ensure_ascii=False))
            answers = len(deliveries) - apologies
            outcome.failed += apologies
            outcome.lost += max(0, expected - len(deliveries))
            outcome.duplicated += max(0, answers - expected)
        problems = [p for p in fake.problems if p]
        if problems:
            outcome.failed += len(problems)
            outcome.notes.append(f"LINE API problems: {problems[:3]}")
        return outcome


def users(n: int) -> list[str]:
    return [ev.user_id() for _ in range(n)]


def ms(values: list[float]) -> str:
    if not values:
        return "n=0"
    v = [x * 1000 for x in values]
    return f"n={len(v)} p50={statistics.median(v):.0f} ms p99={percentile(v, 0.99):.0f} ms max={max(v):.0f} ms"


def burst(platform: Platform, people: list[str], events: int, requests: int, concurrency: int = 16) -> None:
    """`events` text events from `people` (each user's in order) in `requests` webhook requests, posted at once."""
    per_user: dict[str, int] = dict.fromkeys(people, 0)
    order = [people[i % len(people)] for i in range(events)]
    batches: list[list[dict[str, Any]]] = [[] for _ in range(requests)]
    for i, user in enumerate(order):
        per_user[user] += 1
        batches[i * requests // events].append(platform.event(user, f"{WORRY} ({per_user[user]})"))
    # Posted from another process, from one event loop on kept-alive connections, as LINE's servers would: neither
    # the client's threads nor the fake LINE server (it validates every answer in this process) may be what the
    # acknowledgement latency measures.
    requests_ = []
    for batch in (b for b in batches if b):
        raw = ev.body(*batch, validate=False)
        requests_.append((raw, ev.sign(raw, SECRET)))
    urls = [w.url for w in platform.top.live_workers()]
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        acks, refused = pool.submit(post_all, urls, requests_, concurrency).result()
    platform.acks.extend(acks)
    platform.refused += refused


def post_all(urls: list[str], requests_: list[tuple[bytes, str]], concurrency: int) -> tuple[list[float], int]:
    """Post signed webhook bodies round robin over `urls`, `concurrency` at a time, redelivering refusals; returns
    the acknowledgement latencies and the number of refusals. Runs in a child process."""
    return asyncio.run(_post_all(urls, requests_, concurrency))


async def _post_all(urls: list[str], requests_: list[tuple[bytes, str]], concurrency: int) -> tuple[list[float], int]:
    # aiohttp, not httpx: the client's own Python work per request (about three times httpx's on this machine) is
    # counted in every latency it measures, and shares the same two cores with the server.
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    acks: list[float] = []
    refused = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:
        # Connections are opened before the clock starts, as LINE's servers keep theirs alive.
        await asyncio.gather(*(_touch(client, urls[n % len(urls)]) for n in range(concurrency)))

        async def one(n: int, raw: bytes, signature: str) -> None:
            nonlocal refused
            headers = {"X-Line-Signature": signature, "Content-Type": "application/json"}
            delay = 0.5
            for attempt in range(30):
                try:
                    async with gate:
                        started = time.perf_counter()
                        url = f"{urls[(n + attempt) % len(urls)]}/line/webhook"
                        async with client.post(url, data=raw, headers=headers) as response:
                            await response.read()
                            status = response.status
                        elapsed = time.perf_counter() - started
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                if status == 200:
                    acks.append(elapsed)
                    return
                refused += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)

        await asyncio.gather(*(one(n, raw, signature) for n, (raw, signature) in enumerate(requests_)))
    return acks, refused


async def _touch(client: Any, url: str) -> None:
    async with client.get(f"{url}/healthz") as response:
        await response.read()


# ----- web side ------------------------------------------------------------------------------------------------------


class Browser:
    def __init__(self) -> None:
        self.headers = {"X-Visitor-Token": secrets.token_urlsafe(32)}

    def start(self, worker: Worker) -> str:
        response = httpx.post(f"{worker.url}/api/conversations", headers=self.headers, timeout=30)
        response.raise_for_status()
        return str(response.json()["conversation_id"])

    def send(self, worker: Worker, conversation: str, text: str) -> tuple[int, float]:
        started = time.perf_counter()
        try:
            response = httpx.post(
                f"{worker.url}/api/conversations/{conversation}/messages",
                headers=self.headers,
                json={"text": text},
                timeout=60,
            )
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        return status, time.perf_counter() - started

    def history(self, worker: Worker, conversation: str) -> httpx.Response:
        return httpx.get(f"{worker.url}/api/conversations/{conversation}/messages", headers=self.headers, timeout=30)

    def delete(self, worker: Worker, conversation: str) -> int:
        return httpx.delete(
            f"{worker.url}/api/conversations/{conversation}", headers=self.headers, timeout=60
        ).status_code


def flip_time(workers: list[Worker], want_ready: bool, timeout: float = 60) -> float | None:
    """Seconds until every worker's /readyz says `want_ready` (None: not within the timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(w.ready() == want_ready for w in workers):
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def fmt(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f} s"


# ----- scenarios ---------------------------------------------------------------------------------------------------------


def scenario_burst(top: Topology, short: bool) -> Outcome:
    platform = Platform(top)
    events, requests, people = (20, 12, 6) if short else (100, 60, 30)
    burst(platform, users(people), events, requests)
    outcome = platform.settle("burst")
    outcome.notes.append(f"{events} events/{people} users, ack {ms(platform.acks)}")
    return outcome


def scenario_redelivery(top: Topology, short: bool) -> Outcome:
    platform = Platform(top)
    times = 5 if short else 20
    people = users(3 if short else 10)
    for user in people:
        event = platform.event(user)
        with ThreadPoolExecutor(max_workers=4) as pool:  # LINE's redeliveries, to both workers, some at once
            list(pool.map(lambda i, e=event: platform.post(e, worker=top.workers[i % 2]), range(times)))
    outcome = platform.settle("redelivery")
    outcome.notes.append(f"each of {len(people)} events delivered {times}x")
    return outcome


def scenario_kill(top: Topology, short: bool) -> Outcome:
    """kill -9 of a worker in the middle of a burst; takeover: the slowest answer after the kill."""
    platform = Platform(top)
    victim = top.workers[0]
    people = users(6 if short else 20)
    first = [platform.event(u) for u in people]
    for event in first:
        platform.post(event, worker=victim if event is first[0] else None)
    time.sleep(0.3)  # the victim has claimed some of them
    killed_at = time.time()  # the fake LINE server stamps deliveries with time.time()
    victim.kill(signal.SIGKILL)
    for user in people:  # traffic goes on to the live worker
        platform.post(platform.event(user, "ありがとう"))
    outcome = platform.settle("kill -9 mid-burst", timeout=120)
    last = max((d.at for d in top.fake.snapshot()), default=killed_at)
    outcome.notes.append(f"all answered {max(0.0, last - killed_at):.1f} s after the kill")
    victim.start()
    victim.wait_ready()
    return outcome


def scenario_chroma(top: Topology, short: bool) -> Outcome:
    platform = Platform(top)
    outage = 5.0 if short else 30.0
    browser = Browser()
    conversation = browser.start(top.workers[1])
    top.chroma.set_mode("down")
    down_at = time.monotonic()
    unready = flip_time(top.workers, want_ready=False, timeout=20)
    people = users(3)
    for user in people:
        platform.post(platform.event(user))
        platform.post(platform.event(user, "ありがとう"))
    web = [browser.send(top.workers[i % 2], conversation, WORRY)[0] for i in range(4)]
    time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
    top.chroma.set_mode("forward")
    ready = flip_time(top.workers, want_ready=True, timeout=60)
    outcome = platform.settle(f"chroma {outage:.0f} s outage", timeout=240)
    outcome.failed += sum(1 for s in web if s not in (200, 503))
    outcome.notes.append(f"web during outage {sorted(web)}; readiness 503 after {fmt(unready)}, 200 after {fmt(ready)}")
    return outcome


def scenario_postgres(top: Topology, short: bool) -> Outcome:
    platform = Platform(top)
    outage = 3.0 if short else 10.0
    browser = Browser()
    conversation = browser.start(top.workers[0])
    top.database.set_mode("down")
    down_at = time.monotonic()
    unready = flip_time(top.workers, want_ready=False, timeout=20)
    people = users(3)
    posters = [threading.Thread(target=platform.post, args=(platform.event(u),)) for u in people]
    for thread in posters:  # each is refused (503) and redelivered until the database is back
        thread.start()
    web = [browser.send(top.workers[i % 2], conversation, WORRY)[0] for i in range(3)]
    time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
    top.database.set_mode("forward")
    ready = flip_time(top.workers, want_ready=True, timeout=60)
    for thread in posters:
        thread.join()
    outcome = platform.settle(f"postgres {outage:.0f} s restart", timeout=120)
    after, _ = browser.send(top.workers[1], conversation, WORRY)
    outcome.failed += sum(1 for s in web if s not in (200, 503)) + (after != 200)
    history = browser.history(top.workers[0], conversation).json()["messages"]
    stored_twice = sum(1 for m in history if m["role"] == "user") - 1  # only the message after the outage is kept
    outcome.duplicated += max(0, stored_twice)
    outcome.notes.append(
        f"webhook refusals redelivered {platform.refused}; web during outage {sorted(web)}; "
        f"readiness 503 after {fmt(unready)}, 200 after {fmt(ready)}"
    )
    return outcome


def scenario_redis(top: Topology, short: bool) -> Outcome:
    browser = Browser()
    conversation = browser.start(top.workers[0])
    n = 4 if short else 10
    before = [browser.send(top.workers[i % 2], conversation, "ありがとう") for i in range(n)]
    top.redis.set_mode("hang")
    during = [browser.send(top.workers[i % 2], conversation, "ありがとう") for i in range(n)]
    top.redis.set_mode("forward")
    outcome = Outcome("redis hang")
    outcome.failed = sum(1 for status, _ in before + during if status != 200)
    outcome.notes.append(f"web before {ms([t for _, t in before])}; during the hang {ms([t for _, t in during])}")
    return outcome


def scenario_reindex(top: Topology, short: bool) -> Outcome:
    """What `bot index --rebuild` does at its end (a complete new collection, then the switch), twice, under web
    and LINE traffic; the second switch drops the first collection as if it had been retired an hour ago."""
    from bot.retrieval.index import read_active, switch_active

    platform = Platform(top)
    server = http_client(top.chroma_port)
    statuses: list[int] = []
    stop = threading.Event()

    def web_traffic(worker: Worker) -> None:
        browser = Browser()
        conversation = browser.start(worker)
        while not stop.is_set():
            statuses.append(browser.send(worker, conversation, WORRY)[0])

    threads = [threading.Thread(target=web_traffic, args=(w,)) for w in top.workers]
    for thread in threads:
        thread.start()
    people = users(6)
    try:
        for generation in (1, 2):
            name = f"chunks_harness_{generation}_{secrets.token_hex(3)}"
            copy_collection(server, str(read_active(server)), server, name)
            switch_active(server, name, {}, keep_retired_seconds=0 if generation == 2 else 3600)
            for user in people:
                platform.post(platform.event(user))
            time.sleep(8)  # workers follow the pointer within 5 s
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    outcome = platform.settle("re-index under traffic")
    outcome.failed += sum(1 for s in statuses if s != 200)
    outcome.notes.append(f"{len(statuses)} web answers during two switches")
    return outcome


def scenario_web_workers(top: Topology, short: bool) -> Outcome:
    """One conversation's messages sent to both workers at once; a delete on one while the other answers."""
    outcome = Outcome("web on two workers")
    rounds = 5 if short else 20
    interleaved = 0
    for _ in range(3 if short else 10):
        browser = Browser()
        conversation = browser.start(top.workers[0])
        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(
                pool.map(lambda i, b=browser, c=conversation: b.send(top.workers[i % 2], c, "ありがとう")[0], range(4))
            )
        roles = [m["role"] for m in browser.history(top.workers[1], conversation).json()["messages"]]
        outcome.failed += sum(1 for s in statuses if s != 200)
        interleaved += roles != ["user", "bot"] * 4
    surviving = 0
    for i in range(rounds):
        browser = Browser()
        conversation = browser.start(top.workers[0])
        answer = threading.Thread(target=browser.send, args=(top.workers[0], conversation, WORRY))
        answer.start()
        time.sleep((i % 5) * 0.05)  # the delete lands before, during or after the turn
        deleted = browser.delete(top.workers[1], conversation)
        answer.join()
        outcome.failed += deleted != 204
        surviving += surviving_rows(top.database_url, conversation)
    outcome.failed += interleaved + surviving
    outcome.notes.append(
        f"interleaved conversations {interleaved}; rows surviving a delete {surviving}/{rounds} rounds"
    )
    return outcome


def surviving_rows(database_url: str, conversation: str) -> int:
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        total = 0
        for table in ("turns", "conversation_states", "feedback", "conversation_bindings"):
            row = conn.execute(f"SELECT count(*) FROM {table} WHERE conversation_id = %s", (conversation,)).fetchone()
            total += int(row[0]) if row else 0
    return total


def scenario_ack(top: Topology, short: bool) -> Outcome:
    """LINE's burst: 200 events in 125 requests at once; the webhook's acknowledgement latency."""
    platform = Platform(top)
    events, requests = (40, 25) if short else (200, 125)
    burst(platform, users(40), events, requests, concurrency=32)
    outcome = platform.settle("ack burst (PostgreSQL)", timeout=300)
    outcome.notes.append(f"{events} events in {requests} requests: ack {ms(platform.acks)}")
    return outcome


def sqlite_ack(tmp: Path, short: bool) -> Outcome:
    """The same burst on the default store: one worker on SQLite (SQLite serves one process)."""
    fake = FakeLine(TOKEN)
    fake.start()
    try:
        data = tmp / "sqlite-worker"
        worker = Worker(
            "sqlite",
            worker_env(
                "sqlite", tmp, fake, f"sqlite:///{data / 'bot.sqlite3'}", {"CHROMA_PATH": str(ROOT / "data" / "chroma")}
            ),
            tmp / "sqlite.log",
        )
        worker.start()
        try:
            worker.wait_ready()
            top = Topology(fake, [worker], None, None, None, 0, "", tmp)  # type: ignore[arg-type]
            platform = Platform(top)
            events, requests = (40, 25) if short else (200, 125)
            burst(platform, users(40), events, requests, concurrency=32)
            outcome = platform.settle("ack burst (SQLite)", timeout=300)
            outcome.notes.append(f"{events} events in {requests} requests: ack {ms(platform.acks)}")
            return outcome
        finally:
            worker.kill(signal.SIGTERM)
    finally:
        fake.stop()


SCENARIOS: dict[str, Callable[[Topology, bool], Outcome]] = {
    "burst": scenario_burst,
    "redelivery": scenario_redelivery,
    "web": scenario_web_workers,
    "pg": scenario_postgres,
    "redis": scenario_redis,
    "chroma": scenario_chroma,
    "reindex": scenario_reindex,
    "kill": scenario_kill,
    "ack": scenario_ack,
}
SHORT = ("burst", "redelivery", "web", "pg", "kill")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the CI subset, with small counts and short outages")
    parser.add_argument("--only", help=f"comma-separated scenarios of {','.join([*SCENARIOS, 'sqlite'])}")
    parser.add_argument(
        "--keep-logs", metavar="DIR", help="copy the workers' logs there (FAULT_HARNESS_LOG_LEVEL=info)"
    )
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SHORT if args.short else [*SCENARIOS, "sqlite"])
    unknown = set(chosen) - {*SCENARIOS, "sqlite"}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="fault-harness-") as tmp_dir:
        tmp = Path(tmp_dir)
        if any(name in SCENARIOS for name in chosen):
            with topology(tmp) as top:
                for name in chosen:
                    if name in SCENARIOS:
                        top.fake.reset()
                        started = time.perf_counter()
                        outcome = SCENARIOS[name](top, args.short)
                        outcomes.append(outcome)
                        print(f"{outcome.line()}  ({time.perf_counter() - started:.0f} s)", flush=True)
        if "sqlite" in chosen:
            outcome = sqlite_ack(tmp, args.short)
            outcomes.append(outcome)
            print(outcome.line(), flush=True)
        if args.keep_logs:
            for log in tmp.glob("*.log"):
                target = Path(args.keep_logs) / log.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(log.read_bytes())
    total = Outcome("TOTAL")
    for outcome in outcomes:
        total.lost += outcome.lost
        total.duplicated += outcome.duplicated
        total.failed += outcome.failed
    print(total.line())
    return 0 if total.ok else 1


if __name__ == "__main__":
    sys.exit(main())
