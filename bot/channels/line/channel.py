"""The LINE channel of one server process: SDK client, webhook intake, inbox worker; started and stopped by the app.

The SDK's AsyncApiClient opens an aiohttp session, so it is created here, inside the app's lifespan (at import time
it fails with current aiohttp) and closed on shutdown. Requests carry an explicit timeout (the SDK default is 300 s).
Two small thread pools keep blocking work off the event loop: one for the webhook's inbox writes, so that the
acknowledgement never waits behind answers being computed, and one for the engine and the worker's store calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration

from bot.channels.line.handlers import EventProcessor
from bot.channels.line.render import render_text
from bot.channels.line.sender import LineSender, Outcome, SendResult
from bot.channels.line.webhook import (
    MAX_BODY_BYTES,
    SOURCE,
    Intake,
    LineWebhookParser,
    ParsedEvent,
    Stored,
    WebhookRejected,
    prepare,
    push_target,
    record,
)
from bot.channels.line.worker import InboxWorker
from bot.config import Settings
from bot.dialogue.factory import Services
from bot.outages import unavailable_dependency

log = logging.getLogger(__name__)

__all__ = ["MAX_BODY_BYTES", "LineChannel", "WebhookRejected"]


def effective_concurrency(configured: int) -> int:
    """LINE_WORKER_CONCURRENCY, at most two per CPU core.

    Answering is CPU-bound Python (retrieval, composition): threads beyond ~2 per core add no throughput, only
    contention for the interpreter lock and for SQLite's single writer, which is what the webhook's acknowledgement
    waits on. Measured on 2 cores (bench/line_webhook_bench.py): 4 answers as many messages per second as 8 with a
    several times lower p99 acknowledgement latency.
    """
    cap = 2 * (os.cpu_count() or 1)
    if configured > cap:
        log.info("LINE_WORKER_CONCURRENCY=%d capped at %d (two per CPU core)", configured, cap)
    return max(1, min(configured, cap))


class LineChannel:
    def __init__(
        self, settings: Settings, services: Services, *, metrics: Any = None, worker_id: str | None = None
    ) -> None:
        if settings.line_channel_secret is None or settings.line_channel_access_token is None:
            raise ValueError("LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN are required")
        self.settings = settings
        self.services = services
        self.metrics = metrics
        self.parser = LineWebhookParser(settings.line_channel_secret.get_secret_value())
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.concurrency = effective_concurrency(settings.line_worker_concurrency)
        self._accept_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="line-accept")
        self._batcher = AcceptBatcher(self.services.store, self._accept_pool)
        self._work_pool = ThreadPoolExecutor(max_workers=self.concurrency + 2, thread_name_prefix="line-work")
        self.api_client: AsyncApiClient | None = None
        self.worker: InboxWorker | None = None
        self.sender: LineSender | None = None

    async def start(self) -> None:
        settings = self.settings
        assert settings.line_channel_access_token is not None
        configuration = Configuration(
            host=settings.line_api_base_url.rstrip("/"),
            access_token=settings.line_channel_access_token.get_secret_value(),
        )
        self.api_client = AsyncApiClient(configuration)
        self.sender = sender = LineSender(
            AsyncMessagingApi(self.api_client),
            timeout=settings.line_request_timeout,
            attempts=settings.line_send_attempts,
            base_delay=settings.line_retry_base_seconds,
            metrics=self.metrics,
        )
        processor = EventProcessor(
            store=self.services.store,
            engine=self.services.engine,
            sender=sender,
            run_sync=self._run_work,
            group_keyword=settings.line_group_keyword,
            reply_window=settings.line_reply_window_seconds,
            metrics=self.metrics,
        )
        self.worker = InboxWorker(
            self.services.store,
            processor.process,
            worker_id=self.worker_id,
            run_sync=self._run_work,
            capacity=self.concurrency,
            stale_after=settings.line_inbox_stale_seconds,
            poll_interval=settings.line_inbox_poll_seconds,
            retry_base=settings.line_retry_base_seconds,
            retry_budget=settings.line_retry_budget_seconds,
            give_up=processor.apologise,
            metrics=self.metrics,
        )
        self.worker.start()
        log.info(
            "line channel started (worker %s, %d conversations at a time, API %s)",
            self.worker_id,
            self.concurrency,
            configuration.host,
        )

    async def push_text(self, conversation_id: str, text: str, retry_key: str) -> SendResult:
        """Push a message that is not an answer to an event (a consultant's reply, the bot-is-back notice). The
        retry key is the same for every attempt at one message, so LINE delivers it at most once."""
        target = push_target(conversation_id)
        if target is None or self.sender is None:
            return SendResult(Outcome.REJECTED, None, None, "not a LINE conversation", 0)
        return await self.sender.push(target, render_text(text), retry_key)

    async def aclose(self) -> None:
        if self.worker is not None:
            await self.worker.stop(grace=10.0)
        if self.api_client is not None:
            await self.api_client.close()
        self._work_pool.shutdown(wait=True, cancel_futures=True)
        self._accept_pool.shutdown(wait=True, cancel_futures=True)
        log.info("line channel stopped")

    async def _run_work(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._work_pool, partial(fn, *args, **kwargs))

    async def receive(self, body: bytes, signature: str | None, request_id: str) -> Intake:
        """Verify, parse and persist one webhook request. Raises WebhookRejected for a request to refuse."""
        if not self.parser.verify(body, signature):
            self._count("line_webhook_requests_total", "LINE webhook requests", status="400")
            raise WebhookRejected(400, "invalid_signature", "missing or invalid X-Line-Signature")
        try:
            _, events = self.parser.parse_events(body)
        except WebhookRejected:
            self._count("line_webhook_requests_total", "LINE webhook requests", status="400")
            raise
        started = time.perf_counter()
        try:
            outcome = await self._accept(events, request_id)
        except Exception as exc:
            # Nothing is acknowledged that is not persisted: a 503 makes LINE redeliver the request later (events
            # stored before the failure are deduplicated then), where a 500 would look like our bug.
            self._count("line_webhook_requests_total", "LINE webhook requests", status="503")
            log.warning(
                "line webhook %s: the inbox cannot be written (%s); answering 503 for a redelivery",
                request_id,
                unavailable_dependency(exc) or type(exc).__name__,
            )
            raise WebhookRejected(503, "unavailable", "the inbox cannot be written now; redeliver later") from exc
        outcome.store_ms = (time.perf_counter() - started) * 1000
        if outcome.accepted and self.worker is not None:
            self.worker.wake()
        self._count("line_webhook_requests_total", "LINE webhook requests", status="200")
        for name, values in (
            ("accepted", outcome.accepted),
            ("duplicate", outcome.duplicates),
            ("skipped", outcome.skipped),
            ("rejected", outcome.rejected),
        ):
            if values:
                self._count("line_webhook_events_total", "LINE webhook events", float(len(values)), outcome=name)
        return outcome

    async def _accept(self, events: list[ParsedEvent], request_id: str) -> Intake:
        if not events:
            return Intake(request_id)
        outcome, to_store = prepare(
            events, request_id=request_id, keyword=self.settings.line_group_keyword, received_at=time.time()
        )
        if to_store:
            record(outcome, to_store, await self._batcher.add(to_store))
        return outcome

    def _count(self, name: str, help_text: str, amount: float = 1.0, **labels: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, help_text, amount, **labels)


class AcceptBatcher:
    """Group commit for the webhook: the requests that arrive while one transaction is being written are stored
    together in the next one.

    Under a burst, acknowledging waited mostly on queueing (each request its own transaction, each taking the
    interpreter lock from the threads that compute answers); one transaction for all the requests waiting keeps the
    wait at about one write, however many arrive. A request is answered only after the transaction holding its
    events committed; when it fails, every request in it gets the error (their events are redelivered).
    """

    def __init__(self, store: Any, pool: ThreadPoolExecutor) -> None:
        self.store = store
        self.pool = pool
        self._waiting: list[tuple[list[Stored], asyncio.Future[list[bool]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, rows: list[Stored]) -> list[bool]:
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            group, self._waiting = self._waiting, []
            rows = [row for request_rows, _ in group for row in request_rows]
            try:
                stored = await loop.run_in_executor(self.pool, self.store.inbox_accept_many, SOURCE, rows)
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for request_rows, future in group:
                if not future.done():
                    future.set_result(stored[start : start + len(request_rows)])
                start += len(request_rows)
