"""ASGI middleware for the web API: a request-size limit and the CORS allowlist (added in `bot.api.main`)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE_MESSAGE = "送信内容が大きすぎます。メッセージを短くしてもう一度お試しください。"


class _TooLarge(HTTPException):
    """Raised from `receive`: FastAPI re-raises HTTPExceptions from body parsing, so the app's JSON handler answers."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=TOO_LARGE_MESSAGE)


class BodySizeLimitMiddleware:
    """Answers 413 (JSON) when a request body under `path_prefix` is larger than `max_bytes`.

    A declared `Content-Length` is refused before anything is read; a chunked body is counted as it arrives and
    refused as soon as it crosses the limit, so an oversized body is never held in memory.
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
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": "too_large", "message": TOO_LARGE_MESSAGE}, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
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
