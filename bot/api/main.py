"""The FastAPI application: lifespan-managed services, thin routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from tenacity import AsyncRetrying, RetryCallState, wait_exponential_jitter

from bot.api.access_log import AccessLogMiddleware
from bot.api.metrics import Metrics
from bot.api.readiness import Readiness
from bot.api.routes import chat, console, health, line
from bot.api.security import SecurityHeadersMiddleware
from bot.channels.web.budget import IPBudgetMiddleware
from bot.channels.web.middleware import BodySizeLimitMiddleware, CORSMiddleware, cors_options
from bot.config import Settings, get_settings
from bot.dialogue.factory import Services, build_engine
from bot.outages import RETRY_AFTER_SECONDS, WEB_UNAVAILABLE_MESSAGE, outage_exception_types, unavailable_dependency
from bot.retrieval.follow import IndexFollower

log = logging.getLogger(__name__)

# Each channel owns its clients and workers through its own lifespan, entered after the engine is up.
CHANNEL_LIFESPANS = (chat.lifespan, line.lifespan)
# The longest wait between two engine builds while a dependency is down.
BUILD_RETRY_MAX_SECONDS = 30


# How long a thread may hold the interpreter lock while another waits for it (CPython's default: 5 ms). Answers are
# computed in threads of CPU-bound Python; the event loop, which acknowledges webhooks and streams tokens, waits
# that long for the lock after each wake-up, several times per request. See bench/fault_harness.py (ack burst).
GIL_SWITCH_INTERVAL_SECONDS = 0.0005


def build_warm_engine(settings: Settings, metrics: Metrics) -> Services:
    """The engine, with one answer computed so that nothing loads on its first user's message."""
    built = build_engine(settings, metrics=metrics)
    started = time.perf_counter()
    built.engine.warm_up()
    log.info("engine warmed up in %.1f s", time.perf_counter() - started)
    return built


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or get_settings()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.metrics = Metrics()
        readiness = Readiness()
        app.state.readiness = readiness
        readiness.set("engine", "starting")
        app.state.services = None
        builder: asyncio.Task[None] | None = None
        async with AsyncExitStack() as stack:
            stack.callback(readiness.close)

            async def serve(built: Services) -> None:
                """The engine is up: answer, probe its dependencies on /readyz, start the channels."""
                engine = built.engine
                if engine.metrics is None:
                    engine.metrics = app.state.metrics
                app.state.services = built
                readiness.add_sync_probe("store", built.store.ping)
                # The searcher is swapped when the index switches: probe whichever is current.
                readiness.add_sync_probe("index", lambda: built.searcher.collection.count())
                follower = asyncio.create_task(IndexFollower(settings, built).run(), name="index-follower")
                stack.push_async_callback(cancel_and_wait, follower)
                if engine.jobs is not None:  # the job catalogue loads now (seconds at 100k), not on a user's turn
                    jobs = engine.jobs
                    warm = asyncio.create_task(asyncio.to_thread(jobs.warm_up), name="jobs-warm-up")
                    stack.push_async_callback(cancel_and_wait, warm)
                # Rules alone are a degraded safety net: say so, so an operator runs `bot models build`.
                readiness.set("safety", "ok" if engine.safety.learned else "rules only: run `bot models build`")
                readiness.set("engine", "ok")
                for channel in CHANNEL_LIFESPANS:
                    await stack.enter_async_context(channel(app))

            if services is not None:
                await serve(services)
            else:
                try:
                    # Loading models and the index takes seconds: do it off the event loop.
                    await serve(await asyncio.to_thread(build_warm_engine, settings, app.state.metrics))
                except Exception as exc:
                    # A dependency is down at start-up (the database, Chroma, an index not built yet): serve
                    # /healthz and honest 503s meanwhile, and keep trying until it is back.
                    not_ready(app, exc)
                    builder = asyncio.create_task(build_until_ready(app, serve))
            try:
                yield
            finally:
                if builder is not None:
                    await cancel_and_wait(builder)
        if services is None and app.state.services is not None:
            app.state.services.store.close()

    docs = settings.docs_enabled
    app = FastAPI(
        title="Career partner",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        return JSONResponse(
            {"error": _error_code(exc.status_code), "message": detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse(
            {"error": "invalid_request", "message": f"{where}: {first.get('msg', 'invalid input')}".strip(": ")},
            status_code=422,
        )

    async def outage(request: Request, exc: Exception) -> JSONResponse:
        # An outage, not a bug: one line in the log (no traceback, no parameters: they may be message text), and a
        # 503 the widget shows with its retry button.
        dependency = unavailable_dependency(exc) or "a dependency"
        log.warning(
            "%s %s: the %s is unavailable (%s)", request.method, request.url.path, dependency, type(exc).__name__
        )
        return JSONResponse(
            {"error": "unavailable", "message": WEB_UNAVAILABLE_MESSAGE},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    # Registered per class: Starlette re-raises whatever reaches the catch-all handler below (a traceback per
    # request in the server log), which is right for bugs and wrong for a database restart.
    for exc_type in outage_exception_types():
        app.add_exception_handler(exc_type, outage)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the failure (no message text is part of an exception we raise), answer without a stack trace.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": "internal_error", "message": "申し訳ありません。時間をおいてもう一度お試しください。"},
            status_code=500,
        )

    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(line.router)
    app.include_router(console.router)
    # Web chat limits: the body size under /api/ (413), the per-IP budgets (429, counting the 413s as invalid),
    # then CORS so the widget can read every error.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.web_max_body_bytes)
    app.add_middleware(IPBudgetMiddleware)
    app.add_middleware(CORSMiddleware, **cors_options(settings.web_allowed_origins))
    # Outermost: every response gets the headers, the middlewares' own refusals (413, CORS preflights) included,
    # and the access log (without conversation ids) sees the final status.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware)
    return app


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def not_ready(app: FastAPI, exc: BaseException) -> None:
    log.error("engine unavailable: %s", exc)
    app.state.not_ready_reason = str(exc)
    app.state.readiness.set("engine", f"unavailable: {type(exc).__name__}: {exc}"[:300])


async def build_until_ready(app: FastAPI, serve: Callable[[Services], Awaitable[None]]) -> None:
    """Retry the engine build in the background, backing off with jitter (several workers restarting together do
    not hammer a database that just came back), until it succeeds or the app shuts down."""
    settings: Settings = app.state.settings

    def log_retry(state: RetryCallState) -> None:
        outcome = state.outcome
        if outcome is not None and outcome.failed:
            not_ready(app, outcome.exception() or RuntimeError("engine build failed"))
        log.info("engine build: attempt %d failed, next in %.1f s", state.attempt_number, state.upcoming_sleep)

    retrying = AsyncRetrying(
        wait=wait_exponential_jitter(initial=1, max=BUILD_RETRY_MAX_SECONDS),
        before_sleep=log_retry,
        reraise=True,
    )
    # The first attempt failed in the lifespan already: start with a wait.
    await asyncio.sleep(1)
    async for attempt in retrying:
        with attempt:
            built = await asyncio.to_thread(build_warm_engine, settings, app.state.metrics)
    log.info("engine build: succeeded after a failed start; now serving")
    await serve(built)


def _error_code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        413: "too_large",
        429: "rate_limited",
        503: "unavailable",
    }.get(status, "error")
