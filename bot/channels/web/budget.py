"""Per-IP request budgets for the web API, with valid and invalid requests counted apart (pure ASGI).

- valid requests (answered below 400) spend `WEB_RATE_LIMIT_IP` per window; when it is spent, every /api/ request
  from that IP gets 429 until the window resets;
- invalid ones (401, 404, 413, 422... every 4xx but 429) spend `WEB_RATE_LIMIT_IP_INVALID`, a budget of their own:
  once it is spent, an invalid request is answered 429 instead of its 4xx (guessing ids or tokens stays slow), while
  valid requests from the same IP (a shared office NAT) go on as before. A flood of bad requests never locks out
  the good ones behind the same address.

Every check is O(1) (`bot.channels.web.ratelimit`). Runs inside CORS, so a widget can read every 429.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.channels.web.ratelimit import retry_after_header

RATE_LIMITED_MESSAGE = (
    "短い時間に送信が続いたため、少しお休みしています。{seconds}秒ほど待ってからもう一度お試しください。"
)


def rate_limited_body(seconds: str) -> bytes:
    message = RATE_LIMITED_MESSAGE.format(seconds=seconds)
    return json.dumps({"error": "rate_limited", "message": message}, ensure_ascii=False).encode()


def client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class IPBudgetMiddleware:
    def __init__(self, app: ASGIApp, *, path_prefix: str = "/api/") -> None:
        self.app = app
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        web = getattr(scope["app"].state, "web_chat", None)
        if web is None:  # starting up: the routes answer 503 themselves
            await self.app(scope, receive, send)
            return
        settings, limiter = web.settings, web.limiter
        window = settings.web_rate_limit_window
        host = client_host(scope)
        valid_key, invalid_key = f"ip:{host}", f"ip-invalid:{host}"
        if not await limiter.test(valid_key, settings.web_rate_limit_ip, window):
            wait = await limiter.hit(valid_key, settings.web_rate_limit_ip, window)
            await self._refuse(scope, send, window if wait is None else wait, "ip")
            return
        replaced = False

        async def counting_send(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the body of the 4xx we answered 429 instead
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status < 400:
                    await limiter.hit(valid_key, settings.web_rate_limit_ip, window)
                elif status < 500 and status != 429:
                    wait = await limiter.hit(invalid_key, settings.web_rate_limit_ip_invalid, window)
                    if wait is not None:
                        replaced = True
                        await self._refuse(scope, send, wait, "ip-invalid")
                        return
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _refuse(self, scope: Scope, send: Send, wait: float, budget: str) -> None:
        metrics: Any = getattr(scope["app"].state, "metrics", None)
        if metrics is not None:
            metrics.inc("web_rate_limited_total", "Web API requests refused by a rate limit", scope=budget)
        seconds = retry_after_header(wait)
        body = rate_limited_body(seconds)
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", seconds.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
