"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot.api.metrics import CONTENT_TYPE
from bot.api.readiness import Readiness, is_ready

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready to answer: the engine is built, and the store, the search index and Redis (when configured) answer
    now, each within a short timeout (see bot/api/readiness.py)."""
    readiness: Readiness | None = getattr(request.app.state, "readiness", None)
    checks = await readiness.checks() if readiness is not None else {}
    ready = is_ready(checks)
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
