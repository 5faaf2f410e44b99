"""LINE webhook (POST /line/webhook). Without LINE credentials it answers 503 and the web chat keeps working.

The route only verifies, parses and persists (see bot/channels/line/webhook.py) and answers 200 at once; the
channel's inbox worker, started in this router's lifespan, does the rest in the background.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from bot.channels.line.channel import MAX_BODY_BYTES, LineChannel, WebhookRejected
from bot.config import Settings

log = logging.getLogger(__name__)

router = APIRouter(tags=["line"])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """LINE clients and workers live here (created inside the app's lifespan, closed on shutdown)."""
    settings: Settings = app.state.settings
    services = getattr(app.state, "services", None)
    app.state.line = None
    if not settings.line_enabled or services is None:
        if settings.line_enabled:
            log.error("LINE is configured but the engine is not available: the webhook answers 503")
        yield
        return
    channel = LineChannel(settings, services, metrics=getattr(app.state, "metrics", None))
    await channel.start()  # also picks up events accepted before a crash or restart
    app.state.line = channel
    app.state.readiness.set("line", "ok")
    try:
        yield
    finally:
        app.state.line = None
        await channel.aclose()


def _observe_ack(request: Request, started: float, status: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.observe(
            "line_webhook_ack_seconds",
            "Time from the webhook request to our answer (LINE wants a quick 200), by status",
            time.perf_counter() - started,
            status=status,
        )


def _error(status: int, code: str, message: str, request_id: str | None = None) -> JSONResponse:
    body = {"error": code, "message": message}
    headers = {"X-Request-Id": request_id} if request_id else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it grows past `limit` (never buffers more than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/line/webhook")
async def webhook(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    if not settings.line_enabled:
        return _error(503, "line_not_configured", "LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN are not set")
    channel: LineChannel | None = getattr(request.app.state, "line", None)
    if channel is None:
        reason = getattr(request.app.state, "not_ready_reason", "starting up")
        return _error(503, "unavailable", f"the LINE channel is not ready: {reason}")
    request_id = uuid.uuid4().hex[:16]
    started = time.perf_counter()
    body = await _read_body(request, MAX_BODY_BYTES)
    if body is None:
        log.warning("line webhook %s: body over %d bytes refused", request_id, MAX_BODY_BYTES)
        return _error(413, "too_large", f"the webhook body is over {MAX_BODY_BYTES} bytes", request_id)
    try:
        outcome = await channel.receive(body, request.headers.get("x-line-signature"), request_id)
    except WebhookRejected as exc:
        log.warning("line webhook %s: refused with %d (%s)", request_id, exc.status, exc.code)
        _observe_ack(request, started, str(exc.status))
        return _error(exc.status, exc.code, exc.message, request_id)
    _observe_ack(request, started, "200")
    summary = outcome.summary()
    log.info(
        "line webhook %s: %d accepted, %d duplicate, %d skipped, %d rejected in %.1f ms (store %.1f ms)",
        request_id,
        summary["accepted"],
        summary["duplicates"],
        summary["skipped"],
        summary["rejected"],
        (time.perf_counter() - started) * 1000,
        outcome.store_ms,
    )
    return JSONResponse({"status": "ok", "request_id": request_id, **summary}, headers={"X-Request-Id": request_id})
