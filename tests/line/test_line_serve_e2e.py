"""End to end through real `bot serve` processes: signed webhook in, a spec-valid reply out at the fake LINE server.

Two processes share one database, as in a scaled deployment: a redelivery to the other one is a duplicate there.
Then the crash case for real: one process is killed (SIGKILL) while LINE is still answering a reply it has already
delivered; the other takes the event over and the user still gets the answer exactly once. Then a clean SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import line_events as ev
import pytest
from conftest import ACCESS_TOKEN, SECRET
from fake_line_api import FakeLine

ROOT = Path(__file__).resolve().parents[2]
BOT = Path(sys.executable).parent / "bot"


def claimed_by(database: Path, user: str) -> str | None:
    with sqlite3.connect(database) as conn:
        row = conn.execute(
            "SELECT claimed_by FROM inbox_events WHERE conversation_key = ?", (f"inbox:line:user:{user}",)
        ).fetchone()
    return row[0] if row else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.url = f"http://{env['HOST']}:{env['PORT']}"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        command = [str(BOT), "serve"] if BOT.exists() else [sys.executable, "-m", "bot", "serve"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, env=self.env, cwd=self.log.parent, stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 180.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"bot serve exited: {self.log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"bot serve not ready: {self.log.read_text()[-3000:]}")

    def post(self, *events: dict) -> httpx.Response:
        raw = ev.body(*events)
        return httpx.post(
            f"{self.url}/line/webhook",
            content=raw,
            timeout=10,
            headers={"X-Line-Signature": ev.sign(raw, SECRET), "Content-Type": "application/json"},
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


@pytest.fixture
def serve_env(tmp_path: Path, fake_line: FakeLine, index_settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "CHROMA_"))}
    env.update(
        {
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN,
            "LINE_API_BASE_URL": fake_line.url,
            "LINE_REQUEST_TIMEOUT": "2",
            "LINE_INBOX_STALE_SECONDS": "2",
            "LINE_RETRY_BASE_SECONDS": "0.05",
            "DATA_DIR": str(tmp_path / "data"),
            "MODELS_DIR": str(index_settings.models_dir),
            "CHROMA_PATH": str(ROOT / "data" / "chroma"),
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "LOG_LEVEL": "info",
        }
    )
    return env


def test_bot_serve_end_to_end_with_two_processes_and_a_crash(serve_env, fake_line: FakeLine, tmp_path: Path) -> None:
    # Two server processes on one database (they boot side by side to keep the test short).
    first = Server(serve_env, tmp_path / "first.log")
    # The second polls the inbox slowly, so the event posted to the first is the first's to claim.
    second = Server({**serve_env, "PORT": str(free_port()), "LINE_INBOX_POLL_SECONDS": "4"}, tmp_path / "second.log")
    try:
        first.launch()
        second.launch()
        first.wait_ready()
        second.wait_ready()

        # A signed text webhook in, a spec-valid Flex reply out (the fake checks every request).
        user = ev.user_id()
        event = ev.text(
            user,
            "上司が退職して顧客を引き継いだけど、引き継ぎが2週間しかなくて不安です",
            reply_token=fake_line.issue_reply_token(user),
        )
        started = time.perf_counter()
        response = first.post(event)
        assert response.status_code == 200 and response.json()["accepted"] == 1
        assert time.perf_counter() - started < 1.5, "acknowledged well within LINE's 2 s"
        # LINE redelivers it to the other process: a duplicate there.
        assert second.post(event).json()["duplicates"] == 1
        assert fake_line.wait_for(lambda: len(fake_line.delivered_to(user)) == 1, 60), first.log.read_text()[-3000:]
        (delivery,) = fake_line.delivered_to(user)
        assert delivery.method == "reply"
        assert [m["type"] for m in delivery.messages] == ["text", "flex"]
        assert fake_line.loadings and fake_line.loadings[0]["chatId"] == user
        raw = ev.body(event)
        assert (
            httpx.post(f"{first.url}/line/webhook", content=raw, headers={"X-Line-Signature": "bad"}).status_code == 400
        )

        # LINE takes the next reply but answers slowly; the first process is killed meanwhile.
        other = ev.user_id()
        fake_line.fail("reply", None, respond_after=8.0)
        assert (
            first.post(
                ev.text(
                    other,
                    "転職すべきか迷っています。今の会社に残るべきでしょうか",
                    reply_token=fake_line.issue_reply_token(other),
                )
            ).status_code
            == 200
        )
        assert fake_line.wait_for(lambda: len(fake_line.delivered_to(other)) == 1, 60)
        holder = claimed_by(Path(serve_env["DATA_DIR"]) / "bot.sqlite3", other)
        first.stop(signal.SIGKILL)

        # The second process takes the stale claim over, finds the token used, and sends nothing twice.
        if holder is not None and f":{first.proc.pid}:" in holder:
            assert fake_line.wait_for(
                lambda: any(c.endpoint == "reply" and c.status == 400 for c in fake_line.calls), 30
            ), second.log.read_text()[-3000:]
        third = ev.user_id()
        second.post(ev.text(third, "残業が多くて疲れています", reply_token=fake_line.issue_reply_token(third)))
        assert fake_line.wait_for(lambda: len(fake_line.delivered_to(third)) == 1, 60)
        time.sleep(0.5)
        assert len(fake_line.delivered_to(other)) == 1
        assert len(fake_line.delivered_to(user)) == 1

        # A clean stop: uvicorn runs the lifespan's shutdown (the worker stops, the SDK client closes), then
        # re-raises the signal as its exit status.
        assert second.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        log = second.log.read_text()
        assert log.count("Application shutdown complete") == 1, log[-3000:]
        for server in (first, second):
            assert "引き継ぎが2週間" not in server.log.read_text(), "message text never reaches the log"
    finally:
        first.stop(signal.SIGKILL)
        second.stop(signal.SIGKILL)


def test_metrics_of_several_worker_processes_are_summed(serve_env, fake_line: FakeLine, tmp_path: Path) -> None:
    """`bot serve --workers 2`: whichever process answers /metrics, the counts and latency histograms are the sum
    over both (prometheus-client's multiprocess mode)."""
    server = Server({**serve_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}, tmp_path / "workers.log")
    command = [str(BOT), "serve", "--workers", "2"] if BOT.exists() else [sys.executable, "-m", "bot", "serve"]
    with server.log.open("ab") as out:
        server.proc = subprocess.Popen(command, env=server.env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        server.wait_ready()
        users = [ev.user_id() for _ in range(8)]
        for user in users:  # a new connection each: the kernel spreads them over both processes
            response = server.post(ev.text(user, "ありがとう", reply_token=fake_line.issue_reply_token(user)))
            assert response.status_code == 200
        assert fake_line.wait_for(lambda: all(fake_line.delivered_to(u) for u in users), 60)
        time.sleep(1)  # the last answers' metrics are written after their sends return
        for _ in range(4):
            text = httpx.get(f"{server.url}/metrics", timeout=10).text
            assert 'line_webhook_ack_seconds_count{status="200"} 8.0' in text
            assert 'answer_seconds_count{channel="line"} 8.0' in text
            assert 'line_send_seconds_bucket{le="60.0",method="reply",outcome="sent"} 8.0' in text
    finally:
        server.stop()
