"""The FastAPI application: lifespan-managed services, thin routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot.api.metrics import Metrics
from bot.api.routes import health
from bot.config import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.metrics = Metrics()
        app.state.readiness = {"app": "ok"}
        yield

    app = FastAPI(title="Career partner", version="0.1.0", lifespan=lifespan)
    app.include_router(health.router)
    return app
