"""The inbox worker: claims LINE events from the store and processes them, one conversation in order, many in parallel.

The store does the hard part (claims are exclusive per conversation across processes, stale claims of a crashed
process are taken over, attempts are bounded). Here:
- one claim loop per process, woken by the webhook and polling as a fallback (other processes' events, retries);
- it claims only as many events as it has room for, so a claim never sits idle long enough to look stale;
- events of one conversation go to one queue drained by one task, in claim order (= acceptance order);
- a failed event is retried after a backoff while its conversation stays held, and the later events of that
  conversation are released with it, so they never overtake it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from bot.channels.line.handlers import PermanentError, RetryableError, RunSync
from bot.outages import unavailable_dependency
from bot.store.base import InboxEvent, Store

log = logging.getLogger(__name__)

SOURCE = "line"
MAX_RETRY_DELAY = 30.0
PURGE_EVERY = 3600.0
KEEP_FINISHED = 7 * 24 * 3600.0  # keep finished event ids this long: LINE's redeliveries are deduplicated by them


class InboxWorker:
    def __init__(
        self,
        store: Store,
        process: Callable[[InboxEvent], Awaitable[None]],
        *,
        worker_id: str,
        run_sync: RunSync,
        capacity: int = 8,
        stale_after: float = 120.0,
        poll_interval: float = 1.0,
        retry_base: float = 0.5,
        metrics: Any = None,
    ) -> None:
        self.store = store
        self.process = process
        self.worker_id = worker_id
        self.run_sync = run_sync
        self.capacity = max(1, capacity)
        self.stale_after = stale_after
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._queues: dict[str, deque[InboxEvent]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._inflight = 0
        self._loop_task: asyncio.Task[None] | None = None
        self._purge_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._claim_lock = asyncio.Lock()
        self._last_error: dict[int, str] = {}
        self._claim_failures = 0
        self.processed = 0

    # ----- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start claiming. Whatever is pending in the inbox (a crash, a restart) is picked up by the first claim."""
        self._loop_task = asyncio.create_task(self._run(), name="line-inbox-worker")
        self._purge_task = asyncio.create_task(self._purge_loop(), name="line-inbox-purge")

    def wake(self) -> None:
        self._wake.set()

    @property
    def idle(self) -> bool:
        return self._inflight == 0

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let running events finish for up to `grace` seconds, release the rest for a later run."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            # Let a claim in progress finish (its events are enqueued, then released below) rather than cut it off.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._loop_task, timeout=grace)
        if self._purge_task is not None:
            self._purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge_task
        # Events waiting behind a running one go back to the inbox now; running ones get the grace period.
        for queue in self._queues.values():
            while queue:
                event = queue.popleft()
                self._inflight -= 1
                await self._release(event, "worker stopped before processing")
        running = list(self._tasks.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning(
                    "line worker: %d event(s) interrupted at shutdown; they are retried on the next start", len(late)
                )

    # ----- claim loop ------------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before claiming: a wake-up during the claim is not lost
            free = self.capacity - self._inflight
            if free > 0:
                async with self._claim_lock:
                    try:
                        events = await self.run_sync(
                            self.store.inbox_claim,
                            SOURCE,
                            self.worker_id,
                            limit=free,
                            stale_after_seconds=self.stale_after,
                        )
                    except Exception as exc:  # a database hiccup must not kill the worker: try again next round
                        self._claim_failed(exc)
                        events = []
                    else:
                        if self._claim_failures:
                            log.info("line worker: claiming works again after %d failure(s)", self._claim_failures)
                        self._claim_failures = 0
                    for event in events:
                        self._enqueue(event)
                if events and len(events) == free:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    def _claim_failed(self, exc: Exception) -> None:
        """An outage logs one line when it starts and one a minute while it lasts, not a traceback a second."""
        self._claim_failures += 1
        dependency = unavailable_dependency(exc)
        if dependency is None:
            log.exception("line worker: claiming from the inbox failed")
        elif self._claim_failures == 1 or self._claim_failures % 60 == 0:
            log.warning(
                "line worker: the %s is unavailable (%s); claiming again every %.0f s (%d failure(s) so far)",
                dependency,
                type(exc).__name__,
                self.poll_interval,
                self._claim_failures,
            )

    def _enqueue(self, event: InboxEvent) -> None:
        self._inflight += 1
        key = event.conversation_key
        self._queues.setdefault(key, deque()).append(event)
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._drain(key), name=f"line-conversation-{event.pk}")

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                event = queue.popleft()
                try:
                    ok = await self._handle(event)
                finally:
                    self._inflight -= 1
                    self._wake.set()
                if not ok:
                    # Back to the inbox with everything after it, under the claim lock so that no claim slips in
                    # between: the next claim returns them in order again, the failed event first.
                    async with self._claim_lock:
                        later = list(queue)
                        queue.clear()
                        self._inflight -= len(later)
                        await self._release(event, self._last_error.pop(event.pk, "retry"))
                        for other in later:
                            await self._release(other, "an earlier event of this conversation is being retried")
        finally:
            self._tasks.pop(key, None)
            if not queue:
                self._queues.pop(key, None)

    async def _handle(self, event: InboxEvent) -> bool:
        """Process one event; True when finished (done or given up), False when it must be retried."""
        try:
            # Finish well before the claim looks stale, or another process would take the event over meanwhile.
            async with asyncio.timeout(self.stale_after * 0.8):
                await self.process(event)
        except asyncio.CancelledError:
            await asyncio.shield(self._release(event, "interrupted at shutdown"))
            raise
        except PermanentError as exc:
            log.error("line worker: event %s failed for good: %s", event.event_id, exc)
            self._count("failed")
            await self._store_call(self.store.inbox_failed, event.pk, str(exc), retry=False)
            return True
        except Exception as exc:  # RetryableError, a timeout, or a bug: retried, and bounded by the store's attempts
            if not isinstance(exc, RetryableError):
                log.exception("line worker: event %s raised", event.event_id)
            delay = min(MAX_RETRY_DELAY, self.retry_base * (2**event.attempts))
            log.warning(
                "line worker: event %s attempt %d failed (%s); retrying in %.1f s",
                event.event_id,
                event.attempts,
                type(exc).__name__,
                delay,
            )
            self._count("retried")
            self._last_error[event.pk] = f"{type(exc).__name__}: {exc}"
            if not self._stopping:
                await asyncio.sleep(delay)  # the conversation stays ours meanwhile: nothing overtakes this event
            return False
        await self._store_call(self.store.inbox_done, event.pk)
        self.processed += 1
        self._count("done")
        return True

    async def _release(self, event: InboxEvent, reason: str) -> None:
        await self._store_call(self.store.inbox_failed, event.pk, reason, retry=True)

    async def _store_call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            await self.run_sync(fn, *args, **kwargs)
        except Exception:  # the claim goes stale and a later round (or another process) takes the event over
            log.exception("line worker: inbox update failed")

    async def _purge_loop(self) -> None:
        while not self._stopping:
            try:
                removed = await self.run_sync(self.store.inbox_purge, SOURCE, older_than_seconds=KEEP_FINISHED)
                if removed:
                    log.info("line worker: purged %d finished inbox event(s)", removed)
            except Exception:
                log.exception("line worker: purging the inbox failed")
            await asyncio.sleep(PURGE_EVERY)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.inc("line_events_processed_total", "LINE inbox events processed", outcome=outcome)
