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

LLM mode: the composer's `advice_stream` yields the opening as the model writes it; the engine hands each piece to the
`on_token` callback of its turn, which runs on the engine's worker thread and queues a `token` event on the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "Cache-Control": "no-store, no-transform",  # private, and proxies must not buffer or compress the stream
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}
SECTION_ORDER = (
    "escalation",
    "empathy",
    "jobs",
    "direct_answer",
    "situation_analysis",
    "action_plan",
    "career_strategy",
    "legal_points",
    "sources",
    "alternatives",
    "follow_ups",
)


def sse(event: str, data: Any) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"


def comment(text: str) -> str:
    return f": {text}\n\n"


def answer_sections(answer: dict[str, Any]) -> list[tuple[str, Any]]:
    """The answer's non-empty parts in display order."""
    return [(name, answer[name]) for name in SECTION_ORDER if answer.get(name)]


async def event_stream(
    *,
    conversation_id: str,
    run_turn: Callable[[Callable[[str], None]], Awaitable[dict[str, Any]]],
    heartbeat: float,
    background: set[asyncio.Task[Any]],
) -> AsyncIterator[str]:
    """The SSE body of one turn. `run_turn(on_token)` returns the `done` payload (a ChatReply as JSON data); it calls
    `on_token` from the engine's thread with each piece of the opening an LLM writes."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def on_token(text: str) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, ("token", {"text": text}))

    async def produce() -> None:
        try:
            queue.put_nowait(("done", await run_turn(on_token)))
        except Exception as exc:
            queue.put_nowait(("failed", exc))

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
