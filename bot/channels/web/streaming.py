"""Server-Sent Events for the web chat, and the bridge that streams LLM tokens out of the (sync) engine.

Events, in order (each `data:` is one JSON object):
- `accepted` `{conversation_id}` at once, so a client knows the message arrived;
- `token` `{text}`: the answer's opening as an LLM writes it (LLM mode only; a preview, replaced by `done`);
- `section` `{name, data}` for each non-empty part: `escalation`, `empathy`, `situation_analysis`, `action_plan`,
  `career_strategy`, `sources`, `follow_ups` (help lines first: they matter most);
- `done` `{conversation_id, turn_id, answer, conversation_deleted}`: the authoritative answer (same as the JSON API);
- `error` `{error, message}` instead of `done` when the turn failed.
While the engine works, a comment line (`: heartbeat`) goes out every WEB_HEARTBEAT_SECONDS so proxies keep the
connection open; responses carry `X-Accel-Buffering: no` and `Cache-Control: no-cache` so nothing buffers them.

LLM mode: the engine calls its rewriter synchronously inside `handle`. `StreamingRewriter` wraps that rewriter; when a
web stream is listening (a context variable, which `asyncio.to_thread` carries into the worker thread) it runs
`LLMRewriter.astream_rewrite` on the event loop, forwards the opening's tokens to the stream, and hands the final
answer back to the engine, which stores it as usual. Without a listener (LINE, the CLI) it is the plain rewriter.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from bot.answer.model import Answer

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "Cache-Control": "no-store, no-transform",  # private, and proxies must not buffer or compress the stream
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}
SECTION_ORDER = (
    "escalation",
    "empathy",
    "direct_answer",
    "situation_analysis",
    "action_plan",
    "career_strategy",
    "sources",
    "follow_ups",
)
# Bridge deadline on top of the rewriter's own timeout (which already bounds the LLM call).
_BRIDGE_SLACK = 5.0


def sse(event: str, data: Any) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"


def comment(text: str) -> str:
    return f": {text}\n\n"


@dataclass
class TokenSink:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[str, Any]]

    def emit(self, event: str, data: Any) -> None:
        # Only called on the loop (the bridge coroutine runs there).
        self.queue.put_nowait((event, data))


_sink: ContextVar[TokenSink | None] = ContextVar("web_token_sink", default=None)


class StreamingRewriter:
    """Wraps the engine's `LLMRewriter` so a web stream sees the opening's tokens; otherwise transparent."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def rewrite(self, message: str, answer: Answer, retrieval: Any) -> Answer:
        sink = _sink.get()
        if sink is None or sink.loop.is_closed():
            rewritten: Answer = self.inner.rewrite(message, answer, retrieval)
            return rewritten
        future = asyncio.run_coroutine_threadsafe(self._stream(message, answer, retrieval, sink), sink.loop)
        try:
            return future.result(timeout=float(getattr(self.inner, "timeout", 20.0)) + _BRIDGE_SLACK)
        except Exception as exc:  # the grounded answer is always a correct reply
            future.cancel()
            log.warning("llm stream bridge fell back to the grounded answer: %s", type(exc).__name__)
            return answer

    async def _stream(self, message: str, answer: Answer, retrieval: Any, sink: TokenSink) -> Answer:
        final = answer
        async for part in self.inner.astream_rewrite(message, answer, retrieval):
            if isinstance(part, str):
                sink.emit("token", {"text": part})
            else:
                final = part
        return final


def install_streaming_rewriter(engine: Any) -> Callable[[], None]:
    """Wrap `engine.rewriter` when it can stream; returns the undo."""
    inner = getattr(engine, "rewriter", None)
    if inner is None or isinstance(inner, StreamingRewriter) or not hasattr(inner, "astream_rewrite"):
        return lambda: None
    engine.rewriter = StreamingRewriter(inner)

    def undo() -> None:
        if isinstance(engine.rewriter, StreamingRewriter) and engine.rewriter.inner is inner:
            engine.rewriter = inner

    return undo


def answer_sections(answer: dict[str, Any]) -> list[tuple[str, Any]]:
    """The answer's non-empty parts in display order."""
    return [(name, answer[name]) for name in SECTION_ORDER if answer.get(name)]


async def event_stream(
    *,
    conversation_id: str,
    run_turn: Callable[[], Awaitable[dict[str, Any]]],
    heartbeat: float,
    background: set[asyncio.Task[Any]],
) -> AsyncIterator[str]:
    """The SSE body of one turn. `run_turn` returns the `done` payload (a ChatReply as JSON data)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    sink = TokenSink(loop, queue)

    async def produce() -> None:
        reset = _sink.set(sink)
        try:
            queue.put_nowait(("done", await run_turn()))
        except Exception as exc:
            queue.put_nowait(("failed", exc))
        finally:
            _sink.reset(reset)

    # The turn runs to completion even when the visitor goes away: its answer is stored and shows after a reload.
    task = asyncio.create_task(produce())
    background.add(task)
    task.add_done_callback(background.discard)

    yield sse("accepted", {"conversation_id": conversation_id})
    # One pending `get` survives heartbeats (a timed-out `wait_for(queue.get())` could drop an item).
    getter: asyncio.Future[tuple[str, Any]] | None = None
    try:
        while True:
            if getter is None:
                getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter}, timeout=heartbeat)
            if not done:
                yield comment("heartbeat")
                continue
            event, data = getter.result()
            getter = None
            if event == "token":
                yield sse("token", data)
            elif event == "done":
                for name, value in answer_sections(data["answer"]):
                    yield sse("section", {"name": name, "data": value})
                yield sse("done", data)
                return
            else:
                yield sse("error", _error_payload(data))
                return
    finally:
        if getter is not None:
            getter.cancel()


def _error_payload(exc: BaseException) -> dict[str, str]:
    status = getattr(exc, "status_code", 500)
    message = getattr(exc, "detail", None)
    if status == 503 and isinstance(message, str):  # an outage: the widget shows this with its retry button
        return {"error": "unavailable", "message": message}
    if not isinstance(message, str) or status >= 500:
        log.error("web stream turn failed: %s", type(exc).__name__, exc_info=exc)
        return {
            "error": "internal_error",
            "message": "申し訳ありません。回答の作成中に問題が起きました。もう一度お試しください。",
        }
    return {"error": "error", "message": message}
