"""Web chat benchmark: time to first streamed byte, to the first answer section, and to the complete answer.

    .venv/bin/python bench/web_chat_bench.py [--turns 20] [--concurrency 1 50] [--url http://127.0.0.1:8000]

Without --url it starts `bot serve` in a subprocess on a free port (the real engine and index from `data/`, a
throw-away SQLite database, rate limits lifted) so that the client's work does not share the server's GIL. Each
conversation sends a worry, then 「次のステップは？」, through the streaming endpoint
(`POST /api/conversations/{id}/messages/stream`). Per turn it records:
- first byte: the first body bytes (the `accepted` event) after the request was sent;
- first section: the first `section` (or LLM `token`) event, i.e. the first visible part of the answer;
- complete: the `done` event.
At concurrency N, N conversations run at once (`--rounds` times over); at 1, `--turns` turns run one after another.
A warm-up conversation is excluded. Numbers are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _common import percentile

ROOT = Path(__file__).resolve().parent.parent
WORRIES = [
    "営業です。退職した上司の得意先を2週間の引き継ぎで任されたが、顧客に不信感を持たれている",
    "残業が続いて疲れている",
    "転職するか迷っている",
    "給料を上げてほしいと上司に言いたいが切り出し方がわからない",
    "副業を始めたいけど会社の規則が気になる",
    "親の介護と仕事の両立が難しくなってきた",
    "営業の数字が3か月連続で未達です",
    "40代になってこのままのキャリアでいいのか迷う",
]
FOLLOW_UP = "次のステップは？"


@dataclass
class Turn:
    first_byte: float
    first_section: float
    complete: float
    ok: bool


@dataclass
class Results:
    turns: list[Turn] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0


async def stream_turn(http: httpx.AsyncClient, cid: str, text: str, headers: dict[str, str]) -> Turn:
    started = time.perf_counter()
    first_byte = first_section = complete = 0.0
    buffer = ""
    url = f"/api/conversations/{cid}/messages/stream"
    async with http.stream("POST", url, json={"text": text}, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        async for chunk in response.aiter_text():
            now = time.perf_counter() - started
            first_byte = first_byte or now
            buffer += chunk
            if not first_section and ("event: section" in buffer or "event: token" in buffer):
                first_section = now
            if "event: done" in buffer:
                complete = now
            if "event: error" in buffer:
                raise RuntimeError("error event: " + buffer[buffer.index("event: error") :][:200])
    return Turn(first_byte, first_section, complete, ok=bool(complete))


async def conversation(http: httpx.AsyncClient, worry: str, results: Results | None) -> None:
    headers = {"X-Visitor-Token": secrets.token_urlsafe(32)}
    made = await http.post("/api/conversations", headers=headers)
    made.raise_for_status()
    cid = made.json()["conversation_id"]
    for text in (worry, FOLLOW_UP):
        try:
            turn = await stream_turn(http, cid, text, headers)
        except Exception as exc:  # recorded, not fatal: the table says how many failed
            if results is not None:
                results.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if results is not None:
            results.turns.append(turn)


async def run_level(url: str, concurrency: int, turns: int, rounds: int) -> Results:
    results = Results()
    limits = httpx.Limits(max_connections=concurrency + 5, max_keepalive_connections=concurrency + 5)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as warm:
        await conversation(warm, WORRIES[0], None)  # warm-up: model threads, caches
    started = time.perf_counter()
    if concurrency == 1:
        async with httpx.AsyncClient(base_url=url, timeout=300) as http:
            n = 0
            while len(results.turns) + len(results.errors) < turns:
                await conversation(http, WORRIES[n % len(WORRIES)], results)
                n += 1
    else:
        for _ in range(rounds):
            # One client per conversation: each visitor is its own browser with its own connection.
            async def one(n: int) -> None:
                async with httpx.AsyncClient(base_url=url, timeout=300) as http:
                    await conversation(http, WORRIES[n % len(WORRIES)], results)

            await asyncio.gather(*(one(n) for n in range(concurrency)))
    results.wall = time.perf_counter() - started
    return results


def report(concurrency: int, results: Results) -> dict:
    ok = [t for t in results.turns if t.ok]
    row: dict = {
        "concurrency": concurrency,
        "turns": len(ok),
        "errors": len(results.errors),
        "wall_s": round(results.wall, 1),
    }
    for name in ("first_byte", "first_section", "complete"):
        values = [getattr(t, name) * 1000 for t in ok]
        if values:
            row[f"{name}_p50_ms"] = round(percentile(values, 0.5), 1)
            row[f"{name}_p95_ms"] = round(percentile(values, 0.95), 1)
    row["turns_per_s"] = round(len(ok) / results.wall, 2) if results.wall else 0
    return row


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "WEB_RATE_LIMIT_VISITOR": "1000000",
        "WEB_RATE_LIMIT_IP": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bot serve exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError("bot serve did not become ready within 180 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="bench a running server instead (its rate limits must allow the load)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--turns", type=int, default=20, help="turns at concurrency 1")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of N conversations at concurrency N")
    parser.add_argument("--json", action="store_true", help="print one JSON object per level")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="web-chat-bench-") as tmp:
        process = None
        url = args.url
        if url is None:
            process, url = start_server(Path(tmp))
        try:
            rows = [report(c, asyncio.run(run_level(url, c, args.turns, args.rounds))) for c in args.concurrency]
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
    for row in rows:
        if args.json:
            print(json.dumps(row))
            continue
        print(
            f"concurrency {row['concurrency']:>3}: {row['turns']} turns, {row['errors']} errors, {row['wall_s']} s, "
            f"{row['turns_per_s']} turns/s"
        )
        for name, label in (("first_byte", "first byte"), ("first_section", "first section"), ("complete", "complete")):
            if f"{name}_p50_ms" in row:
                print(f"  {label:<14} p50 {row[f'{name}_p50_ms']:>9.1f} ms   p95 {row[f'{name}_p95_ms']:>9.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
