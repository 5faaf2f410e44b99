"""A fake LINE Messaging API on 127.0.0.1 that the real SDK talks to (`Configuration(host=...)`).

Every request body is validated against `messaging-api.yml` (discriminators resolved, see line_openapi.py) and
against the limits the spec does not encode (UTF-16 text length, grapheme-counted labels, postback data length,
Flex sizes and bubble counts, URI schemes...). A request that fails gets LINE's 400 and is recorded in `problems`:
tests assert that list stays empty. Reply tokens are issued by the fake, single-use and expiring, as on LINE; push
honours `X-Line-Retry-Key` (a repeated key gets 409). Failures can be scripted per endpoint: a status (400 invalid
reply token, 429, 500) or a delay (slow; the request is still executed afterwards, like a LINE that answered after
the client gave up).

Runs its own event loop in a thread, so it serves an in-process TestClient, a `bot serve` subprocess and the
benchmark alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
from aiohttp import web
from line_openapi import OpenAPISchemas

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent / "fixtures" / "line" / "line-openapi" / "messaging-api.yml"

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
URI_SCHEMES = ("http://", "https://", "line://", "tel:")

_SCHEMAS: OpenAPISchemas | None = None
CALL = web.RequestKey("call", object)
FAILURE = web.RequestKey("failure", object)


def schemas() -> OpenAPISchemas:
    global _SCHEMAS
    if _SCHEMAS is None:
        _SCHEMAS = OpenAPISchemas(SPEC)
    return _SCHEMAS


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=True, separators=(",", ":")))


# ----- the limits the spec does not encode -------------------------------------------------------------------------------


def limit_problems(body: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    messages = body.get("messages")
    if not isinstance(messages, list):
        return problems
    if len(messages) > 5:
        problems.append(f"{len(messages)} messages (max 5)")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        where = f"messages/{i}"
        kind = message.get("type")
        if kind == "text":
            text = message.get("text", "")
            if not text.strip():
                problems.append(f"{where}: empty text")
            if utf16(text) > 5000:
                problems.append(f"{where}: text of {utf16(text)} UTF-16 units (max 5000)")
            if re.search(r"[\ud800-\udfff]", text):
                problems.append(f"{where}: lone surrogate (text cut mid-character)")
        if kind == "flex":
            problems += _flex_problems(message, where)
        quick = message.get("quickReply")
        if isinstance(quick, dict):
            items = quick.get("items", [])
            if len(items) > 13:
                problems.append(f"{where}: {len(items)} quick reply items (max 13)")
            for j, item in enumerate(items):
                action = item.get("action", {})
                label = action.get("label")
                if not label:
                    problems.append(f"{where}/quickReply/{j}: a quick reply button needs a label")
                elif graphemes(label) > 20:
                    problems.append(f"{where}/quickReply/{j}: label of {graphemes(label)} graphemes (max 20)")
                problems += _action_problems(action, f"{where}/quickReply/{j}")
    return problems


def _flex_problems(message: dict[str, Any], where: str) -> list[str]:
    problems = []
    alt = message.get("altText", "")
    if not alt.strip() or utf16(alt) > 1500:
        problems.append(f"{where}: altText empty or over 1500")
    contents = message.get("contents", {})
    bubbles = contents.get("contents", []) if contents.get("type") == "carousel" else [contents]
    if contents.get("type") == "carousel":
        if len(bubbles) > 12:
            problems.append(f"{where}: {len(bubbles)} bubbles (max 12)")
        if json_bytes(contents) > 50_000:
            problems.append(f"{where}: carousel of {json_bytes(contents)} bytes (max 50 KB)")
    for b, bubble in enumerate(bubbles):
        if json_bytes(bubble) > 30_000:
            problems.append(f"{where}: bubble {b} of {json_bytes(bubble)} bytes (max 30 KB)")
    for path, node in _walk(contents, f"{where}/contents"):
        if node.get("type") == "text" and "text" in node and not node.get("contents") and not str(node["text"]).strip():
            problems.append(f"{path}: empty Flex text")
        if node.get("type") == "button":
            label = node.get("action", {}).get("label")
            if not label:
                problems.append(f"{path}: a Flex button needs a label")
        action = node.get("action")
        if isinstance(action, dict):
            label = action.get("label")
            if label and graphemes(label) > 40:
                problems.append(f"{path}: Flex action label of {graphemes(label)} graphemes (max 40)")
            problems += _action_problems(action, path)
    return problems


def _walk(node: Any, path: str) -> Any:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key != "action":
                yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def _action_problems(action: dict[str, Any], where: str) -> list[str]:
    problems = []
    kind = action.get("type")
    if kind == "postback":
        data = action.get("data", "")
        if utf16(data) > 300:
            problems.append(f"{where}: postback data of {utf16(data)} UTF-16 units (max 300)")
        if "text" in action and "displayText" in action:
            problems.append(f"{where}: postback with both text and displayText")
        if graphemes(action.get("displayText", "")) > 300:
            problems.append(f"{where}: displayText over 300")
    if kind == "uri":
        uri = action.get("uri", "")
        if not uri.startswith(URI_SCHEMES) or len(uri) > 1000:
            problems.append(f"{where}: uri {uri!r} (schemes http, https, line, tel; max 1000)")
    if kind == "message" and graphemes(action.get("text", "")) > 300:
        problems.append(f"{where}: message action text over 300")
    return problems


# ----- the server --------------------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """A message request LINE accepted: what the user sees."""

    method: str  # reply | push
    to: str
    messages: list[dict[str, Any]]
    retry_key: str | None
    at: float


@dataclass
class Failure:
    status: int | None  # None: no error, only the delay
    message: str = ""
    delay: float = 0.0  # before handling the request (a slow LINE)
    respond_after: float = 0.0  # after handling it, before answering (LINE did it, the answer is late)


@dataclass
class Token:
    to: str
    issued: float
    ttl: float
    used: bool = False


@dataclass
class Call:
    endpoint: str
    status: int
    body: Any
    headers: dict[str, str]
    problems: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None


class FakeLine:
    def __init__(self, access_token: str = "test-access-token") -> None:
        self.access_token = access_token
        self.url = ""
        self._lock = threading.Lock()
        self._ids = itertools.count(461230966842064897)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.reset()

    # ----- control (any thread) -----

    def reset(self) -> None:
        with self._lock:
            self.calls: list[Call] = []
            self.deliveries: list[Delivery] = []
            self.loadings: list[dict[str, Any]] = []
            self.problems: list[str] = []
            self.tokens: dict[str, Token] = {}
            self.failures: dict[str, deque[Failure]] = {}
            self.retry_keys: dict[str, dict[str, Any]] = {}
            self.lenient_tokens = False  # accept any unknown reply token once (benchmarks)

    def issue_reply_token(self, to: str, ttl: float = 60.0) -> str:
        token = uuid.uuid4().hex
        with self._lock:
            self.tokens[token] = Token(to, time.monotonic(), ttl)
        return token

    def fail(
        self,
        endpoint: str,
        status: int | None = 500,
        *,
        times: int = 1,
        message: str = "",
        delay: float = 0.0,
        respond_after: float = 0.0,
    ) -> None:
        """Script the next `times` requests to `endpoint` (reply, push, loading) to fail or be slow."""
        default = {400: "Invalid reply token", 429: "Too Many Requests", 500: "Internal Server Error"}
        with self._lock:
            queue = self.failures.setdefault(endpoint, deque())
            for _ in range(times):
                queue.append(Failure(status, message or default.get(status or 0, "error"), delay, respond_after))

    def delivered_to(self, to: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.to == to]

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def max_in_flight(self, endpoint: str) -> int:
        """The most requests to `endpoint` that LINE was handling at the same time."""
        with self._lock:
            spans = [(c.started, c.finished or time.monotonic()) for c in self.calls if c.endpoint == endpoint]
        return max((sum(1 for s, e in spans if s <= start < e) for start, _ in spans), default=0)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()

    # ----- lifecycle -----

    def start(self) -> str:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[self._record_status])
            app.router.add_post("/v2/bot/message/reply", self._reply)
            app.router.add_post("/v2/bot/message/push", self._push)
            app.router.add_post("/v2/bot/chat/loading/start", self._loading)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-line", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake LINE server did not start")
        return self.url

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    # ----- handlers (the server's loop) -----

    @web.middleware
    async def _record_status(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        call = request.get(CALL)
        if call is not None:
            call.status = response.status
            call.finished = time.monotonic()
        failure = request.get(FAILURE)
        if failure is not None and failure.respond_after:
            await asyncio.sleep(failure.respond_after)
        return response

    async def _common(self, request: web.Request, endpoint: str, schema: str) -> tuple[Any, web.Response | None]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        call = Call(endpoint, 0, body, headers)
        request[CALL] = call
        with self._lock:
            self.calls.append(call)
            failure = self.failures.get(endpoint, deque()).popleft() if self.failures.get(endpoint) else None
        request[FAILURE] = failure
        if headers.get("authorization") != f"Bearer {self.access_token}":
            call.status = 401
            return body, _json(401, {"message": "Authentication failed"})
        problems = ["body is not JSON"] if body is None else schemas().errors(schema, body) + limit_problems(body)
        if not headers.get("content-type", "").startswith("application/json"):
            problems.append("Content-Type is not application/json")
        if problems:
            call.status, call.problems = 400, problems
            with self._lock:
                self.problems += [f"{endpoint}: {p}" for p in problems]
            return body, _json(
                400,
                {
                    "message": "The request body has 1 error(s)",
                    "details": [{"message": p, "property": ""} for p in problems[:10]],
                },
            )
        if failure is not None:
            if failure.delay:
                await asyncio.sleep(failure.delay)
            if failure.status is not None:
                call.status = failure.status
                return body, _json(failure.status, {"message": failure.message})
        return body, None

    async def _reply(self, request: web.Request) -> web.Response:
        body, error = await self._common(request, "reply", "ReplyMessageRequest")
        if error is not None:
            return error
        if "x-line-retry-key" in {k.lower() for k in request.headers}:
            return _json(400, {"message": "X-Line-Retry-Key is not supported for this API"})
        with self._lock:
            token = self.tokens.get(body["replyToken"])
            if token is None and self.lenient_tokens:
                token = self.tokens[body["replyToken"]] = Token("?", time.monotonic(), 60)
            if token is None or token.used or time.monotonic() - token.issued > token.ttl:
                return _json(400, {"message": "Invalid reply token"})
            token.used = True
            self.deliveries.append(Delivery("reply", token.to, body["messages"], None, time.time()))
        return _json(200, {"sentMessages": self._sent(body["messages"])})

    async def _push(self, request: web.Request) -> web.Response:
        body, error = await self._common(request, "push", "PushMessageRequest")
        if error is not None:
            return error
        key = request.headers.get("X-Line-Retry-Key")
        if key is not None and not UUID_RE.match(key):
            with self._lock:
                self.problems.append(f"push: X-Line-Retry-Key {key!r} is not a UUID")
            return _json(400, {"message": "The value for the 'X-Line-Retry-Key' header is invalid"})
        with self._lock:
            if key is not None and key in self.retry_keys:
                accepted = self.retry_keys[key]
                return _json(
                    409,
                    {"message": "The retry key is already accepted", "sentMessages": accepted["sent"]},
                    headers={"x-line-accepted-request-id": accepted["request_id"]},
                )
            sent = self._sent(body["messages"])
            if key is not None:
                self.retry_keys[key] = {"sent": sent, "request_id": uuid.uuid4().hex}
            self.deliveries.append(Delivery("push", body["to"], body["messages"], key, time.time()))
        return _json(200, {"sentMessages": sent})

    async def _loading(self, request: web.Request) -> web.Response:
        body, error = await self._common(request, "loading", "ShowLoadingAnimationRequest")
        if error is not None:
            return error
        problems = []
        seconds = body.get("loadingSeconds", 20)
        if seconds % 5:
            problems.append(f"loadingSeconds {seconds} is not a multiple of 5")
        if not str(body.get("chatId", "")).startswith("U"):
            problems.append("the loading animation works in one-to-one chats only (chatId must be a user id)")
        if problems:
            with self._lock:
                self.problems += [f"loading: {p}" for p in problems]
            return _json(400, {"message": "; ".join(problems)})
        with self._lock:
            self.loadings.append(body)
        return _json(202, {})

    def _sent(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": str(next(self._ids)), "quoteToken": uuid.uuid4().hex} for _ in messages]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"x-line-request-id": uuid.uuid4().hex, **(headers or {})}
    return web.json_response(body, status=status, headers=all_headers)


@contextlib.contextmanager
def running_fake(access_token: str = "test-access-token") -> Any:
    fake = FakeLine(access_token)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
