"""ASGI middleware for the web API: a request-size and JSON-nesting limit and the CORS allowlist (see `bot.api.main`)."""

from __future__ import annotations

import json
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.channels.edge import json_too_deep

TOO_LARGE_MESSAGE = "送信内容が大きすぎます。メッセージを短くしてもう一度お試しください。"
TOO_DEEP_MESSAGE = "送信内容の形式が正しくありません。ページを再読み込みしてからもう一度お試しください。"


class BodySizeLimitMiddleware:
    """Answers 413 (JSON) when a request body under `path_prefix` is larger than `max_bytes`, and 400 when it is JSON
    nested deeper than the edge allows (checked before any parser sees it: Python's recurses).

    A declared `Content-Length` is refused before anything is read; a chunked body is counted as it arrives and
    refused as soon as it crosses the limit, so an oversized body is never held in memory. A body within the limit
    (32 KB by default) is read whole, checked, and handed to the app as it came.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, path_prefix: str = "/api/") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, 413, "too_large", TOO_LARGE_MESSAGE)
            return
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away before sending its body
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await _refuse(send, 413, "too_large", TOO_LARGE_MESSAGE)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and json_too_deep(body):
            await _refuse(send, 400, "bad_request", TOO_DEEP_MESSAGE)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: http.disconnect, which streaming responses listen for

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, code: str, text: str) -> None:
    body = json.dumps({"error": code, "message": text}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def allowed_origins(setting: str) -> list[str]:
    """`WEB_ALLOWED_ORIGINS`: comma- or space-separated origins (`https://media.example.com`), or `*`."""
    return [o.strip().rstrip("/") for o in setting.replace(",", " ").split() if o.strip()]


def cors_options(setting: str) -> dict[str, Any]:
    """Keyword arguments for Starlette's CORSMiddleware. No cookies cross origins: the visitor token is a header."""
    return {
        "allow_origins": allowed_origins(setting),
        "allow_methods": ["GET", "POST", "DELETE", "OPTIONS"],
        "allow_headers": ["Content-Type", "X-Visitor-Token"],
        "expose_headers": ["Retry-After"],
        "allow_credentials": False,
        "max_age": 600,
    }


__all__ = ["BodySizeLimitMiddleware", "CORSMiddleware", "allowed_origins", "cors_options"]
