"""A small OpenAI-compatible `/v1/chat/completions` server for testing the real `langchain-openai` client.

The request's `model` names the behaviour, so one server serves every test and each request picks its own:
- `normal`: replies with `server.reply` (JSON body, or SSE chunks when the request says `stream: true`)
- `slow`: waits `server.slow_seconds` before answering normally
- `trickle`: sends the reply a few bytes at a time, forever-ish: every read succeeds, the whole never finishes
- `malformed`: a reply cut off in the middle of its JSON
- `error`: HTTP 500 with an OpenAI-style error body
- `refusal`: a polite refusal as plain text, no JSON
- `refusal-field`: OpenAI's structured refusal (`refusal` set, `content` null)
- `schema`: valid JSON of the wrong shape
Every request body is kept in `server.requests`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

REFUSAL = "申し訳ありませんが、このご相談にはお答えできません。"
DEFAULT_REPLY = json.dumps({"empathy": "大変でしたね。", "situation_analysis": []}, ensure_ascii=False)


class FakeOpenAI:
    def __init__(self, *, reply: str = DEFAULT_REPLY, slow_seconds: float = 10.0, chunk_chars: int = 8) -> None:
        self.reply = reply
        self.slow_seconds = slow_seconds
        self.chunk_chars = chunk_chars
        self.requests: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ----- lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends slow and trickling responses so shutdown does not wait on them
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- the app ---------------------------------------------------------------------------------------------------
    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            mode = str(body.get("model", "normal"))
            stream = bool(body.get("stream"))
            if mode == "error":
                error = {"error": {"message": "internal error", "type": "server_error", "code": None}}
                return JSONResponse(error, status_code=500)
            if mode == "slow" and not await self._sleep(self.slow_seconds):
                return JSONResponse({"error": {"message": "shutting down"}}, status_code=503)
            content: str | None = {
                "malformed": self.reply[: max(len(self.reply) // 2, 1)],
                "refusal": REFUSAL,
                "refusal-field": None,
                "schema": json.dumps({"situation_analysis": "not a list", "empathy": ["nor this"]}),
            }.get(mode, self.reply)
            refusal = REFUSAL if mode == "refusal-field" else None
            if mode == "trickle":
                return StreamingResponse(
                    self._trickle(mode, content or "", stream),
                    media_type="text/event-stream" if stream else "application/json",
                )
            if stream:
                return StreamingResponse(self._sse(mode, content, refusal), media_type="text/event-stream")
            return JSONResponse(_completion(mode, content, refusal))

        return app

    async def _sleep(self, seconds: float) -> bool:
        """Sleep in small steps; False when the server is stopping."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self._stopping.is_set():
                return False
            await asyncio.sleep(0.02)
        return True

    async def _sse(self, mode: str, content: str | None, refusal: str | None) -> AsyncIterator[bytes]:
        for delta in _deltas(content, refusal, self.chunk_chars):
            yield _event(_chunk(mode, delta, None))
            await asyncio.sleep(0.002)  # let the client see separate chunks, as a real model streams them
        yield _event(_chunk(mode, {}, "stop"))
        yield b"data: [DONE]\n\n"

    async def _trickle(self, mode: str, content: str, stream: bool) -> AsyncIterator[bytes]:
        # Each piece arrives well inside any read timeout; only a deadline on the whole call stops this.
        if stream:
            pieces = [_event(_chunk(mode, d, None)) for d in _deltas(content, None, 1)]
        else:
            body = json.dumps(_completion(mode, content, None), ensure_ascii=False).encode()
            pieces = [body[i : i + 2] for i in range(len(body))[::2]]
        for piece in pieces:
            if not await self._sleep(0.1):
                return
            yield piece


def _deltas(content: str | None, refusal: str | None, size: int) -> Iterator[dict[str, Any]]:
    yield {"role": "assistant", "content": ""}
    if refusal is not None:
        yield {"refusal": refusal}
    text = content or ""
    for i in range(0, len(text), size):
        yield {"content": text[i : i + size]}


def _completion(mode: str, content: str | None, refusal: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": mode,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def _chunk(mode: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": mode,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
