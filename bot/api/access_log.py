"""The access log, without conversation ids: `bot serve` turns uvicorn's own off and logs through this instead.

uvicorn's access log prints every path as requested, so each conversation id (the key to a visitor's history,
together with their token) sat next to the client's IP. Here the id segment is replaced by `{id}` and query strings
are dropped; method, status, duration and the client address stay, which is what an operator needs.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("bot.access")

_CONVERSATION = re.compile(r"^(/api/conversations/)[^/]+")


def redact_path(path: str) -> str:
    return _CONVERSATION.sub(r"\1{id}", path)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            client = scope.get("client")
            log.info(
                '%s "%s %s" %d %.1fms',
                client[0] if client else "-",
                scope["method"],
                redact_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )
