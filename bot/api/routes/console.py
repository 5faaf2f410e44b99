"""The operators' console at /console: thin handlers over `bot.console` (sign-in, insights) and `bot.handoff.desk`
(the queue and the consultant's actions), rendering the Jinja2 templates in `bot/console/templates/`.

Every page needs a signed-in operator (a session cookie; the session lives in the database). Every form post carries
the session's CSRF token (the login form a token of its own, double-submitted in a cookie). A consultant opens only
waiting conversations and the active ones they hold (403 otherwise: another's, a closed one, one never queued); admins
open any queued one. Every opening is written to the audit log ("open"), and so is every read of the history by the
open page's live update ("refresh"). Only the holder acts on an active conversation (409 otherwise), admins on any.
Insights, their CSV export and the audit log are for admins.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import AfterValidator

from bot.api.deps import ServicesDep, SettingsDep
from bot.channels.web.ratelimit import RateLimiter, make_rate_limiter, retry_after_header
from bot.config import Settings
from bot.console import insights as insight
from bot.console.auth import Auth, Session, csrf_matches
from bot.dialogue.engine import DialogueEngine
from bot.handoff.desk import Delivery, HandoffDesk, HeldByAnother, NotInQueue
from bot.store.base import Store, Turn
from bot.store.desk import Handoff, QueueTab
from bot.store.schema import ID_LEN

log = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "console"
COOKIE = "console_session"
LOGIN_COOKIE = "console_login_csrf"
PAGE_SIZE = 50
LOGIN_RATE_LIMITED = "ログインの試行が多すぎます。時間をおいてお試しください。"
LOGIN_FAILED = (
    "ユーザー名またはパスワードが違うか、ログインに続けて失敗したため一時的にログインできません。"
    "時間をおいてお試しください。"
)
HISTORY_LIMIT = 200
STATIC_TYPES = {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

REASONS = {"user": "本人の希望", "crisis": "危機対応", "feedback": "低評価", "low_confidence": "回答できず"}
STATUSES = {"waiting": "待機中", "active": "対応中", "closed": "終了"}
OUTCOMES = {"handed_back": "AIに戻した", "closed": "終了", "user_returned": "本人がAIに戻った"}
CHANNELS = {"line": "LINE", "web": "Web", "other": "その他"}
ROLES = {"user": "相談者", "bot": "AI", "consultant": "担当者"}


@dataclass
class Console:
    settings: Settings
    store: Store
    engine: DialogueEngine
    auth: Auth
    zone: ZoneInfo
    limiter: RateLimiter  # sign-in attempts per IP (Redis when configured, shared by the workers)

    @property
    def desk(self) -> HandoffDesk:
        if self.engine.handoffs is None:
            raise HTTPException(status_code=503, detail="handoff is not configured")
        return self.engine.handoffs


@lru_cache(maxsize=1)
def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(CONSOLE_DIR / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(REASONS=REASONS, STATUSES=STATUSES, OUTCOMES=OUTCOMES, CHANNELS=CHANNELS, ROLES=ROLES)
    return env


def get_console(request: Request, services: ServicesDep, settings: SettingsDep) -> Console:
    console: Console | None = getattr(request.app.state, "console", None)
    if console is None or console.store is not services.store:
        console = Console(
            settings=settings,
            store=services.store,
            engine=services.engine,
            auth=Auth(
                services.store,
                session_hours=settings.console_session_hours,
                lock_after=settings.console_lockout_failures,
                lock_minutes=settings.console_lockout_minutes,
            ),
            zone=ZoneInfo(settings.handoff_timezone),
            limiter=make_rate_limiter(settings.redis_url, prefix=settings.web_rate_limit_prefix + "console:"),
        )
        request.app.state.console = console
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]


async def current_session(request: Request, console: ConsoleDep) -> Session | None:
    return await asyncio.to_thread(console.auth.session, request.cookies.get(COOKIE))


async def signed_in(session: Annotated[Session | None, Depends(current_session)]) -> Session:
    if session is None:
        raise HTTPException(status_code=303, detail="login required", headers={"Location": "/console/login"})
    return session


SessionDep = Annotated[Session, Depends(signed_in)]


async def admin(session: SessionDep) -> Session:
    if session.operator.role != "admin":
        raise HTTPException(status_code=403, detail="admins only")
    return session


AdminDep = Annotated[Session, Depends(admin)]
CsrfField = Annotated[str, Form(max_length=200)]


def _no_nul(value: str) -> str:
    """PostgreSQL stores no NUL character in text: a form field with one is refused (422), not a 500."""
    if "\x00" in value:
        raise ValueError("the text contains a NUL character")
    return value


NoNul = AfterValidator(_no_nul)


def check_csrf(session: Session, given: str) -> None:
    if not csrf_matches(session.csrf_token, given):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong; reload the page")


def render(
    request: Request, console: Console, name: str, session: Session | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    def local(moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(console.zone).strftime("%Y-%m-%d %H:%M")

    env = templates()
    env.filters["local"] = local
    html = env.get_template(name).render(
        session=session,
        operator=session.operator if session else None,
        csrf=session.csrf_token if session else "",
        poll_ms=int(console.settings.console_poll_seconds * 1000),
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


router = APIRouter(prefix="/console", include_in_schema=False)


# ----- sign-in --------------------------------------------------------------------------------------------------------
@router.get("")
async def home() -> RedirectResponse:
    return see_other("/console/queue")


@router.get("/login")
async def login_page(request: Request, console: ConsoleDep) -> HTMLResponse:
    return _login_form(request, console)


def _login_form(request: Request, console: Console, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(request, console, "login.html", None, status_code, login_csrf=token, error=error)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=console.settings.console_cookie_secure,
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    console: ConsoleDep,
    csrf: CsrfField = "",
    username: Annotated[str, Form(max_length=200), NoNul] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    if not csrf_matches(request.cookies.get(LOGIN_COOKIE) or "", csrf):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong; reload the login page")
    settings = console.settings
    host = request.client.host if request.client else "unknown"  # uvicorn resolves X-Forwarded-For from trusted proxies
    wait = await console.limiter.hit(
        f"login:{host}", settings.console_login_rate_limit, settings.console_login_rate_window
    )
    if wait is not None:  # before the password is checked: a flood neither costs argon2 time nor locks accounts
        limited = _login_form(request, console, LOGIN_RATE_LIMITED, status_code=429)
        limited.headers["Retry-After"] = retry_after_header(wait)
        return limited
    result = await asyncio.to_thread(console.auth.login, username.strip(), password)
    if result.token is None:
        # One message for every failure: a lockout told apart would say which usernames exist.
        return _login_form(request, console, LOGIN_FAILED, status_code=401)
    response = see_other("/console/queue")
    response.set_cookie(
        COOKIE,
        result.token,
        max_age=int(console.settings.console_session_hours * 3600),
        path="/console",
        httponly=True,
        samesite="strict",
        secure=console.settings.console_cookie_secure,
    )
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


@router.post("/logout")
async def logout(console: ConsoleDep, session: SessionDep, csrf: CsrfField = "") -> Response:
    check_csrf(session, csrf)
    await asyncio.to_thread(console.auth.logout, session)
    response = see_other("/console/login")
    response.delete_cookie(COOKIE, path="/console")
    return response


# ----- the queue ------------------------------------------------------------------------------------------------------
Tab = Literal["waiting", "mine", "closed"]


def _queue(console: Console, tab: QueueTab, operator: str, page: int) -> dict[str, Any]:
    with console.store.desk_read() as desk:
        return {
            "tab": tab,
            "page": page,
            "items": desk.listing(tab, operator, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE),
            "counts": desk.counts(operator),
            "version": desk.queue_version(),
            "page_size": PAGE_SIZE,
        }


@router.get("/queue")
async def queue_page(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    tab: Tab = "waiting",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    sent: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    data = await asyncio.to_thread(_queue, console, tab, session.operator.username, page)
    return render(request, console, "queue.html", session, open_now=console.desk.reception_open(), sent=sent, **data)


@router.get("/queue/table")
async def queue_table(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    tab: Tab = "waiting",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    data = await asyncio.to_thread(_queue, console, tab, session.operator.username, page)
    return render(request, console, "_queue_table.html", session, **data)


@router.get("/queue/version")
async def queue_version(console: ConsoleDep, session: SessionDep) -> JSONResponse:
    """Changes whenever the queue does: the page asks for the table again only then."""

    def version() -> str:
        with console.store.desk_read() as desk:
            return desk.queue_version()

    return JSONResponse({"version": await asyncio.to_thread(version)})


# ----- a conversation -------------------------------------------------------------------------------------------------
def _valid_id(conversation_id: str) -> str:
    if not conversation_id or len(conversation_id) > ID_LEN or "\x00" in conversation_id:
        raise HTTPException(status_code=404, detail="no such conversation")
    return conversation_id


def _queued(console: Console, conversation_id: str, session: Session | None) -> Handoff:
    """The conversation's handoff, when the operator may read it: a consultant a waiting one or an active one they
    hold, an admin any queued one. Otherwise 403: a conversation never queued, another consultant's, or a closed one
    (its history goes on with the bot after the close, which is no consultant's to read). Without a session only
    "was it ever queued" is checked (taking: the desk itself refuses another's conversation, with a 409)."""
    with console.store.desk_read() as desk:
        found = desk.handoff(_valid_id(conversation_id))
    if found is None:
        raise HTTPException(status_code=403, detail="this conversation is not in the consultant queue")
    if session is None or session.operator.role == "admin" or found.status == "waiting":
        return found
    if found.status == "active" and found.assigned_to == session.operator.username:
        return found
    raise HTTPException(status_code=403, detail="this conversation is not yours to open")


def _conversation(console: Console, conversation_id: str, session: Session, *, action: str) -> dict[str, Any]:
    """The page's data; the reading is audited as `action` ("open" for the page, "refresh" for its live update)."""
    handoff = _queued(console, conversation_id, session)
    with console.store.desk() as desk:
        desk.audit(session.operator.username, action, conversation_id)
    turns = console.store.recent_turns(conversation_id, HISTORY_LIMIT)
    with console.store.desk_read() as desk:
        version = desk.conversation_version(conversation_id)
        trail = desk.audit_entries(limit=20, conversation_id=conversation_id)
    return {
        "handoff": handoff,
        "turns": [_turn_view(t) for t in turns],
        "version": version,
        "trail": trail,
    }


def _turn_view(turn: Turn) -> dict[str, Any]:
    answer = turn.answer or {}
    escalation = answer.get("escalation") if isinstance(answer, dict) else None
    return {
        "id": turn.id,
        "role": turn.role,
        "text": turn.text,
        "at": turn.created_at,
        "kind": answer.get("kind") if isinstance(answer, dict) else None,
        "escalation": escalation.get("kind") if isinstance(escalation, dict) else None,
    }


@router.get("/c/{conversation_id}")
async def conversation_page(
    request: Request,
    conversation_id: str,
    console: ConsoleDep,
    session: SessionDep,
    sent: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    data = await asyncio.to_thread(_conversation, console, conversation_id, session, action="open")
    return render(request, console, "conversation.html", session, sent=sent, **data)


@router.get("/c/{conversation_id}/messages")
async def conversation_messages(
    request: Request, conversation_id: str, console: ConsoleDep, session: SessionDep
) -> HTMLResponse:
    """The history alone, for the open page's live update: the same access check as the page, audited as "refresh"
    (the page asks for it only when the conversation's version changed, so one entry per change, not per poll)."""
    data = await asyncio.to_thread(_conversation, console, conversation_id, session, action="refresh")
    return render(request, console, "_history.html", session, **data)


@router.get("/c/{conversation_id}/version")
async def conversation_version(conversation_id: str, console: ConsoleDep, session: SessionDep) -> JSONResponse:
    def version() -> str:
        _queued(console, conversation_id, session)
        with console.store.desk_read() as desk:
            return desk.conversation_version(conversation_id)

    return JSONResponse({"version": await asyncio.to_thread(version)})


async def deliver(request: Request, delivery: Delivery, text: str | None = None) -> str:
    """Send to the user's channel: LINE pushes (with the message's retry key, so a repeat is delivered once); the
    widget asks for new turns itself. Returns what happened, for the page to show."""
    if not delivery.conversation_id.startswith("line:"):
        return "stored"
    line = getattr(request.app.state, "line", None)
    if line is None:
        log.warning("console: a LINE conversation's message was stored, but LINE is not configured")
        return "line-off"
    result = await line.push_text(delivery.conversation_id, text or delivery.text, delivery.retry_key)
    if not result.outcome.delivered:
        log.warning(
            "console: LINE push of turn %d failed: %s %s", delivery.turn_id, result.outcome.value, result.status
        )
        return "failed"
    return "sent"


async def _act(
    console: Console, session: Session, conversation_id: str, csrf: str, action: Any, *args: Any, **kwargs: Any
) -> Any:
    """A consultant's action on a queued conversation: CSRF first, then the access check (403), then the action, which
    checks again in its own transaction (409 when the conversation left the queue or another consultant holds it)."""
    check_csrf(session, csrf)
    await asyncio.to_thread(_queued, console, conversation_id, None if action == console.desk.take else session)
    try:
        return await asyncio.to_thread(action, conversation_id, session.operator.username, *args, **kwargs)
    except NotInQueue:
        raise HTTPException(status_code=409, detail="this conversation is no longer open") from None
    except HeldByAnother as held:
        raise HTTPException(
            status_code=409, detail=f"another consultant ({held.assigned_to}) is handling this conversation"
        ) from None


@router.post("/c/{conversation_id}/take")
async def take(
    request: Request, conversation_id: str, console: ConsoleDep, session: SessionDep, csrf: CsrfField = ""
) -> RedirectResponse:
    await _act(console, session, conversation_id, csrf, console.desk.take)
    return see_other(f"/console/c/{conversation_id}")


@router.post("/c/{conversation_id}/reply")
async def reply(
    request: Request,
    conversation_id: str,
    console: ConsoleDep,
    session: SessionDep,
    csrf: CsrfField = "",
    text: Annotated[str, Form(max_length=4000), NoNul] = "",
) -> RedirectResponse:
    if not text.strip():
        check_csrf(session, csrf)
        return see_other(f"/console/c/{conversation_id}?sent=empty")
    desk = console.desk
    admin = session.operator.role == "admin"
    delivery: Delivery = await _act(console, session, conversation_id, csrf, desk.reply, text, admin=admin)
    outcome = await deliver(request, delivery, f"{desk.consultant_label}\n{delivery.text}")
    return see_other(f"/console/c/{conversation_id}?sent={outcome}")


@router.post("/c/{conversation_id}/{action}")
async def end(
    request: Request,
    conversation_id: str,
    action: Literal["hand-back", "close"],
    console: ConsoleDep,
    session: SessionDep,
    csrf: CsrfField = "",
    note: Annotated[str, Form(max_length=2000), NoNul] = "",
) -> RedirectResponse:
    """Hand back to the bot, or close with a note: either way the bot answers again, and the user is told."""
    desk = console.desk
    finish = desk.hand_back if action == "hand-back" else desk.close
    admin = session.operator.role == "admin"
    delivery = await _act(console, session, conversation_id, csrf, finish, note, admin=admin)
    outcome = await deliver(request, delivery)
    if not admin:  # a closed conversation is no consultant's to open: back to the queue
        return see_other(f"/console/queue?tab=mine&sent={outcome}")
    return see_other(f"/console/c/{conversation_id}?sent={outcome}")


# ----- insights and the audit log (admins) ----------------------------------------------------------------------------
def _insights(console: Console, days: int) -> insight.Insights:
    with console.store.desk_read() as desk:
        return insight.compute(
            desk, now=datetime.now(UTC), days=days, zone=console.zone, topic_names=console.engine.topic_names
        )


@router.get("/insights")
async def insights_page(
    request: Request, console: ConsoleDep, session: AdminDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> HTMLResponse:
    data = await asyncio.to_thread(_insights, console, days)
    return render(request, console, "insights.html", session, data=data, days=days, tables=insight.TABLES)


@router.get("/insights/{name}.csv")
async def insights_csv(
    name: str, console: ConsoleDep, session: AdminDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> Response:
    if name not in insight.TABLES:
        raise HTTPException(status_code=404, detail="no such table")
    data = await asyncio.to_thread(_insights, console, days)

    def audit() -> None:
        with console.store.desk() as desk:
            desk.audit(session.operator.username, "export", detail=f"{name}.csv ({days} days)")

    await asyncio.to_thread(audit)
    header, rows = insight.table(data, name)
    return Response(
        "\ufeff" + insight.to_csv(header, rows),  # the BOM makes Excel read UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{days}d.csv"'},
    )


@router.get("/audit")
async def audit_page(request: Request, console: ConsoleDep, session: AdminDep) -> HTMLResponse:
    def entries() -> list[Any]:
        with console.store.desk_read() as desk:
            return desk.audit_entries(limit=500)

    return render(request, console, "audit.html", session, entries=await asyncio.to_thread(entries))


@router.get("/static/{name}")
async def static(name: str) -> Response:
    path = CONSOLE_DIR / "static" / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or "/" in name or not path.is_file():
        raise HTTPException(status_code=404, detail="not found")
    return Response(path.read_bytes(), media_type=kind)
