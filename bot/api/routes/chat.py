"""Web chat: the JSON/SSE API under /api/ (same engine as LINE), the embeddable /widget.js and the demo page at /.

A visitor is a random token the widget keeps in localStorage and sends as `X-Visitor-Token`; conversations are
`web:` ids bound to that token's hash (`bot.channels.web.visitors`). Limits, in the order they apply: request body
size and JSON nesting (middleware, 413/400), per-IP requests with valid and invalid ones counted apart (middleware,
429; `bot.channels.web.budget`), new conversations per IP (429: a token only acts once it has started a
conversation, so rotating tokens costs one each), messages per IP and per visitor (429), message length (413),
empty message (422). Every error is JSON `{"error", "message"}` with a Japanese message the widget shows as is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, StreamingResponse

from bot.api.deps import EngineDep, SettingsDep, StoreDep
from bot.api.metrics import ANSWER_HELP, ANSWER_SECONDS
from bot.channels.web.budget import RATE_LIMITED_MESSAGE
from bot.channels.web.models import (
    MAX_ROW_ID,
    ChatReply,
    ErrorBody,
    FeedbackIn,
    FeedbackOut,
    HandoffInfo,
    History,
    HistoryMessage,
    MessageIn,
    NewConversation,
    StepIn,
    StepsOut,
    WidgetConfig,
    web_answer,
)
from bot.channels.web.ratelimit import RateLimiter, make_rate_limiter, retry_after_header
from bot.channels.web.streaming import SSE_HEADERS, event_stream
from bot.channels.web.visitors import (
    TOKEN_HEADER,
    new_conversation_id,
    same_owner,
    token_hash,
    valid_conversation_id,
    valid_token,
)
from bot.config import Settings
from bot.dialogue.engine import ConversationGone, DialogueEngine
from bot.outages import RETRY_AFTER_SECONDS, WEB_UNAVAILABLE_MESSAGE, unavailable_dependency
from bot.store.base import NotFound

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
HISTORY_LIMIT = 100  # the engine keeps 20 turns; this only bounds the read
COMMENT_MAX_CHARS = 1000
GONE_MESSAGE = "この会話は見つかりませんでした。新しい相談を始めてください。"
WIDGET_MIN_POLL_SECONDS = 3.0  # how often, at most, a widget with a consultant asks for their replies

T = TypeVar("T")


@dataclass
class WebChat:
    """What the web channel owns for the app's lifetime."""

    settings: Settings
    limiter: RateLimiter
    # Store look-ups (ownership, history, feedback) get their own small pool so that, under load, they do not queue
    # behind engine turns in the default pool: a stream starts (and heartbeats flow) while answers are computed.
    store_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="web-store")
    )
    streams: set[asyncio.Task[Any]] = field(default_factory=set)

    async def store_call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.store_pool, partial(fn, *args))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    web = WebChat(settings, make_rate_limiter(settings.redis_url, prefix=settings.web_rate_limit_prefix))
    app.state.web_chat = web
    ping = getattr(web.limiter, "ping", None)
    if ping is not None:  # Redis configured: reported, but the limits fall back to in-process counting without it
        app.state.readiness.add_probe("redis", ping, optional=True)
    try:
        yield
    finally:
        if web.streams:  # turns still running for visitors who left: let them store their answers
            await asyncio.wait(set(web.streams), timeout=30)
        await web.limiter.aclose()
        web.store_pool.shutdown(wait=False)


# ----- dependencies ---------------------------------------------------------------------------------------------------
def get_web(request: Request) -> WebChat:
    web: WebChat | None = getattr(request.app.state, "web_chat", None)
    if web is None:
        raise HTTPException(status_code=503, detail="チャットを準備しています。少し待ってからお試しください。")
    return web


WebDep = Annotated[WebChat, Depends(get_web)]


def _metric(request: Request, name: str, help_text: str, **labels: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.inc(name, help_text, **labels)


async def _limit(request: Request, web: WebChat, scope: str, key: str, limit: int) -> None:
    wait = await web.limiter.hit(f"{scope}:{key}", limit, web.settings.web_rate_limit_window)
    if wait is not None:
        _metric(request, "web_rate_limited_total", "Web API requests refused by a rate limit", scope=scope)
        seconds = retry_after_header(wait)
        raise HTTPException(
            status_code=429, detail=RATE_LIMITED_MESSAGE.format(seconds=seconds), headers={"Retry-After": seconds}
        )


def _host(request: Request) -> str:
    # uvicorn resolves X-Forwarded-For from trusted proxies (--forwarded-allow-ips).
    return request.client.host if request.client else "unknown"


async def limit_ip_conversations(request: Request, web: WebDep) -> None:
    """Starting a conversation is what makes a (new) visitor token usable: bounded per IP."""
    await _limit(request, web, "ip-conversations", _host(request), web.settings.web_rate_limit_ip_conversations)


async def limit_ip_messages(request: Request, web: WebDep) -> None:
    """Messages per IP, whatever the tokens: rotating tokens does not multiply the per-visitor limit."""
    await _limit(request, web, "ip-messages", _host(request), web.settings.web_rate_limit_ip_messages)


async def visitor(x_visitor_token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None) -> str:
    """The visitor's token hash."""
    if not valid_token(x_visitor_token):
        raise HTTPException(
            status_code=401,
            detail="ブラウザの識別情報がありません。ページを再読み込みしてからもう一度お試しください。",
        )
    return token_hash(x_visitor_token or "")


VisitorDep = Annotated[str, Depends(visitor)]


async def owned_conversation(
    conversation_id: Annotated[str, PathParam(description="A `web:` conversation id")],
    owner: VisitorDep,
    web: WebDep,
    store: StoreDep,
) -> str:
    """The conversation id when this visitor owns it; 404 otherwise (whether or not it exists)."""
    if not valid_conversation_id(conversation_id) or not same_owner(
        await web.store_call(store.owner_of, conversation_id), owner
    ):
        raise HTTPException(status_code=404, detail=GONE_MESSAGE)
    return conversation_id


ConversationDep = Annotated[str, Depends(owned_conversation)]


async def limit_visitor(request: Request, owner: VisitorDep, web: WebDep) -> None:
    await _limit(request, web, "visitor", owner, web.settings.web_rate_limit_visitor)


def _message_text(body: MessageIn, settings: Settings) -> str:
    text = body.text.strip()
    if not text:
        # A validation error like any other 422 (`invalid_request`), with a sentence the widget can show.
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "メッセージを入力してください。", "type": "value_error"}]
        )
    limit = settings.web_max_message_chars
    if len(text) > limit:
        raise HTTPException(
            status_code=413,
            detail=f"メッセージが長すぎます（{len(text)}文字）。{limit}文字以内にしてください。",
        )
    return text


async def _run_turn(
    request: Request,
    engine: DialogueEngine,
    settings: Settings,
    conversation_id: str,
    text: str,
    owner: str,
    on_token: Callable[[str], None] | None = None,
) -> ChatReply:
    # The engine is sync and serialises one conversation's turns itself.
    started = time.perf_counter()
    try:
        reply = await asyncio.to_thread(partial(engine.handle, conversation_id, text, owner=owner, on_token=on_token))
    except ConversationGone:  # deleted while this message waited for the turn before it
        raise HTTPException(status_code=404, detail=GONE_MESSAGE) from None
    except Exception as exc:
        dependency = unavailable_dependency(exc)
        if dependency is None:
            raise
        # Nothing of the turn was stored (one transaction), so sending the message again is safe.
        log.warning("web turn: the %s is unavailable (%s)", dependency, type(exc).__name__)
        raise HTTPException(
            status_code=503, detail=WEB_UNAVAILABLE_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        ) from None
    _metric(request, "web_messages_total", "Web chat messages answered", kind=reply.answer.kind)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.observe(ANSWER_SECONDS, ANSWER_HELP, time.perf_counter() - started, channel="web")
    handoff = None if reply.deleted else await asyncio.to_thread(handoff_info, engine, conversation_id)
    return ChatReply(
        conversation_id=conversation_id,
        turn_id=reply.turn_id,
        answer=web_answer(reply.answer, settings.web_article_url_template),
        conversation_deleted=reply.deleted,
        held=reply.held,
        handoff=handoff,
    )


def handoff_info(engine: DialogueEngine, conversation_id: str) -> HandoffInfo | None:
    """The conversation's handoff, when it has one (sync: run it in a thread)."""
    desk = engine.handoffs
    if desk is None:
        return None
    with engine.store.desk_read() as queue:
        found = queue.handoff(conversation_id)
    return None if found is None else HandoffInfo(status=found.status, reception_open=desk.reception_open())


# ----- the API --------------------------------------------------------------------------------------------------------
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "Missing or malformed X-Visitor-Token",
        404: "No such conversation for this visitor",
        413: "Message or request body too large",
        422: "Empty or invalid message",
        429: "Rate limited; see Retry-After",
        503: "Starting up, or the database or the search index is unreachable right now; see Retry-After",
    }.items()
}
api = APIRouter(prefix="/api", tags=["chat"], responses=ERRORS)


@api.get("/config", response_model=WidgetConfig, summary="What the widget needs to know about this server")
async def widget_config(settings: SettingsDep) -> WidgetConfig:
    return WidgetConfig(
        max_message_chars=settings.web_max_message_chars,
        article_links=bool(settings.web_article_url_template),
        # At most one request per 3 s per visitor: a few visitors behind one NAT stay inside the per-IP budget.
        poll_seconds=max(WIDGET_MIN_POLL_SECONDS, settings.console_poll_seconds),
    )


@api.post(
    "/conversations",
    status_code=201,
    response_model=NewConversation,
    dependencies=[Depends(limit_ip_conversations)],
    summary="Start a conversation",
)
async def create_conversation(owner: VisitorDep, web: WebDep, store: StoreDep) -> NewConversation:
    """A new unguessable conversation id, bound to the visitor token in `X-Visitor-Token`."""
    conversation_id = new_conversation_id()
    await web.store_call(store.bind_conversation, conversation_id, owner)
    return NewConversation(conversation_id=conversation_id)


@api.get("/conversations/{conversation_id}/messages", response_model=History, summary="Conversation history")
async def history(
    conversation_id: ConversationDep,
    web: WebDep,
    store: StoreDep,
    engine: EngineDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="Only turns newer than this id")] = 0,
) -> History:
    """The stored turns, oldest first (the engine keeps the most recent 20), and the checked-off steps. While a
    consultant is involved (`handoff`), ask again with `after` (the newest id shown) for their replies."""
    turns = [t for t in await web.store_call(store.recent_turns, conversation_id, HISTORY_LIMIT) if t.id > after]
    state = await web.store_call(store.get_state, conversation_id)
    template = settings.web_article_url_template
    messages = [
        HistoryMessage(
            id=t.id,
            role=t.role,
            text=t.text,
            answer=web_answer(t.answer, template) if t.role == "bot" and t.answer else None,
            created_at=t.created_at,
        )
        for t in turns
    ]
    handoff = await web.store_call(handoff_info, engine, conversation_id)
    return History(
        conversation_id=conversation_id,
        messages=messages,
        done_steps=state.done_steps if state else [],
        handoff=handoff,
    )


@api.post(
    "/conversations/{conversation_id}/messages",
    response_model=ChatReply,
    dependencies=[Depends(limit_ip_messages), Depends(limit_visitor)],
    summary="Send a message, get the whole answer",
)
async def send_message(
    request: Request,
    conversation_id: ConversationDep,
    owner: VisitorDep,
    body: MessageIn,
    engine: EngineDep,
    settings: SettingsDep,
) -> ChatReply:
    """A worry, a follow-up chip's text (「もっと詳しく」「次のステップは？」…) or a clarify choice."""
    text = _message_text(body, settings)
    return await _run_turn(request, engine, settings, conversation_id, text, owner)


@api.post(
    "/conversations/{conversation_id}/messages/stream",
    dependencies=[Depends(limit_ip_messages), Depends(limit_visitor)],
    response_class=StreamingResponse,
    summary="Send a message, stream the answer (Server-Sent Events)",
    responses={
        200: {
            "description": (
                "`text/event-stream`. Events: `accepted` {conversation_id}; `token` {text} (LLM mode: the opening as "
                "it is written, a preview); `section` {name, data} per part of the answer (escalation, empathy, jobs, "
                "direct_answer, situation_analysis, action_plan, career_strategy, legal_points, sources, "
                "alternatives, follow_ups); `done` (a ChatReply, "
                "authoritative); or `error` {error, message}. `: heartbeat` comments keep proxies from timing out."
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream_message(
    request: Request,
    conversation_id: ConversationDep,
    owner: VisitorDep,
    body: MessageIn,
    engine: EngineDep,
    settings: SettingsDep,
    web: WebDep,
) -> StreamingResponse:
    text = _message_text(body, settings)

    async def run_turn(on_token: Callable[[str], None]) -> dict[str, Any]:
        reply = await _run_turn(request, engine, settings, conversation_id, text, owner, on_token)
        return reply.model_dump(mode="json")

    stream = event_stream(
        conversation_id=conversation_id,
        run_turn=run_turn,
        heartbeat=settings.web_heartbeat_seconds,
        background=web.streams,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


@api.post(
    "/conversations/{conversation_id}/feedback",
    status_code=201,
    response_model=FeedbackOut,
    summary="Was this answer helpful?",
)
async def feedback(
    conversation_id: ConversationDep, body: FeedbackIn, web: WebDep, store: StoreDep, engine: EngineDep
) -> FeedbackOut:
    comment = (body.comment or "").strip() or None
    if comment and len(comment) > COMMENT_MAX_CHARS:
        raise HTTPException(status_code=413, detail=f"コメントは{COMMENT_MAX_CHARS}文字以内でお願いします。")
    try:
        feedback_id = await web.store_call(store.add_feedback, conversation_id, body.turn_id, body.helpful, comment)
    except NotFound:
        raise HTTPException(status_code=404, detail="この回答は見つかりませんでした。") from None
    # A "not helpful" may put the conversation in a consultant's queue; the visitor is told so.
    notice = None
    if engine.handoffs is not None:
        notice = await web.store_call(engine.handoffs.on_feedback, conversation_id, body.helpful)
    return FeedbackOut(feedback_id=feedback_id, notice=notice)


@api.post(
    "/conversations/{conversation_id}/steps",
    response_model=StepsOut,
    summary="Check off an action-plan step",
)
async def check_step(conversation_id: ConversationDep, body: StepIn, engine: EngineDep) -> StepsOut:
    done = await asyncio.to_thread(engine.mark_step_done, conversation_id, body.step.strip())
    return StepsOut(done_steps=done)


@api.delete(
    "/conversations/{conversation_id}",
    status_code=204,
    response_class=Response,
    summary="Delete my conversation",
)
async def delete_conversation(conversation_id: ConversationDep, engine: EngineDep) -> Response:
    """Turns, state, feedback and the binding. Waits for a turn in flight so nothing is written after."""
    await asyncio.to_thread(engine.delete_conversation, conversation_id)
    return Response(status_code=204)


# ----- the widget and the demo page -----------------------------------------------------------------------------------
pages = APIRouter(tags=["web"])


@lru_cache(maxsize=4)
def _asset(name: str) -> bytes:
    return (WEB_DIR / name).read_bytes()


@pages.get("/widget.js", summary="The embeddable chat widget (one script tag)")
async def widget_js() -> Response:
    return Response(
        _asset("widget.js"),
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"},
    )


@pages.get("/", response_class=HTMLResponse, summary="Demo: a sample article page with the widget embedded")
async def demo_page() -> HTMLResponse:
    return HTMLResponse(_asset("demo.html"), headers={"Cache-Control": "no-cache"})


router = APIRouter()
router.include_router(api)
router.include_router(pages)
