"""The inbox worker: claims LINE events from the store and processes them, one conversation in order, many in parallel.

The store does the hard part (claims are exclusive per conversation across processes, stale claims of a crashed
process are taken over, attempts are bounded). Here:
- one claim loop per process, woken by the webhook and polling as a fallback (other processes' events, retries);
- it claims only as many events as it has room for, so a claim never sits idle long enough to look stale;
- events of one conversation go to one queue drained by one task, in claim order (= acceptance order);
- a failed event is retried after a backoff while its conversation stays held, and the later events of that
  conversation are released with it, so they never overtake it;
- retries are bounded in time, not in count (a Chroma or database outage of a few minutes loses nothing): with
  jittered exponential backoff until `retry_budget` seconds after the webhook accepted the event, then `give_up`
  (one short apology to the user) and the event is failed for good;
- every claim this worker holds is renewed every `stale_after / 4` seconds, so a live worker's events never look
  stale and a dead worker's are taken over after `stale_after` seconds (default 20).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import RetryCallState, wait_random_exponential

from bot.channels.line.handlers import PermanentError, RetryableError, RunSync
from bot.outages import unavailable_dependency
from bot.store.base import InboxEvent, Store

log = logging.getLogger(__name__)

SOURCE = "line"
MAX_RETRY_DELAY = 30.0
# One event's processing (the answer, the sends with their own retries) must end within this; then it is retried.
PROCESS_TIMEOUT = 120.0
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
        retry_budget: float = 600.0,
        give_up: Callable[[InboxEvent], Awaitable[None]] | None = None,
        process_timeout: float = PROCESS_TIMEOUT,
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
        self.retry_budget = retry_budget
        self.give_up = give_up
        self.process_timeout = process_timeout
        self.metrics = metrics
        # Full jitter: workers that failed together during an outage do not all retry at the same moment after it.
        self._backoff = wait_random_exponential(multiplier=max(retry_base, 0.001), max=MAX_RETRY_DELAY)
        self._failures: dict[int, int] = {}  # event pk -> failures in this process (the backoff's exponent)
        self._claimed: dict[int, InboxEvent] = {}  # every event this worker holds a claim on (for the heartbeat)
        self._heartbeat_task: asyncio.Task[None] | None = None
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
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="line-inbox-heartbeat")

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
        # The heartbeat runs on through the grace period below: running events stay ours while they finish.
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
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task

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
        self._claimed[event.pk] = event
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
            # The heartbeat keeps the claim while this runs; the timeout only ends a turn or a send that hangs.
            async with asyncio.timeout(self.process_timeout):
                await self.process(event)
        except asyncio.CancelledError:
            await asyncio.shield(self._release(event, "interrupted at shutdown"))
            raise
        except PermanentError as exc:
            log.error("line worker: event %s failed for good: %s", event.event_id, exc)
            self._count("failed")
            await self._store_call(self.store.inbox_failed, event.pk, str(exc), retry=False)
            self._forget(event)
            return True
        except Exception as exc:  # RetryableError, an outage, a timeout, or a bug: retried within the time budget
            if not isinstance(exc, RetryableError) and unavailable_dependency(exc) is None:
                log.exception("line worker: event %s raised", event.event_id)
            failures = self._failures[event.pk] = self._failures.get(event.pk, 0) + 1
            delay = self._retry_delay(failures)
            age = time.time() - event.accepted_at.timestamp()
            if age + delay > self.retry_budget:
                await self._give_up(event, f"{type(exc).__name__}: {exc}", age)
                return True
            log.warning(
                "line worker: event %s failure %d (%s); retrying in %.1f s (%.0f s of the %.0f s budget left)",
                event.event_id,
                failures,
                type(exc).__name__,
                delay,
                self.retry_budget - age,
                self.retry_budget,
            )
            self._count("retried")
            self._last_error[event.pk] = f"{type(exc).__name__}: {exc}"
            if not self._stopping:
                await asyncio.sleep(delay)  # the conversation stays ours meanwhile: nothing overtakes this event
            return False
        await self._store_call(self.store.inbox_done, event.pk)
        self._forget(event)
        self.processed += 1
        self._count("done")
        return True

    def _retry_delay(self, failures: int) -> float:
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = failures
        return float(self._backoff(state))

    async def _give_up(self, event: InboxEvent, error: str, age: float) -> None:
        """The budget is spent: one short apology (the user is not left waiting in silence), then failed for good."""
        log.error("line worker: event %s given up after %.0f s of retries: %s", event.event_id, age, error[:200])
        self._count("given_up")
        if self.give_up is not None:
            try:
                await self.give_up(event)
            except Exception as exc:  # the apology is best effort: LINE may be what is down
                log.warning("line worker: the apology for event %s failed (%s)", event.event_id, type(exc).__name__)
        await self._store_call(self.store.inbox_failed, event.pk, error, retry=False)
        self._forget(event)

    def _forget(self, event: InboxEvent) -> None:
        self._failures.pop(event.pk, None)
        self._claimed.pop(event.pk, None)

    async def _release(self, event: InboxEvent, reason: str) -> None:
        self._claimed.pop(event.pk, None)
        await self._store_call(self.store.inbox_failed, event.pk, reason, retry=True)

    async def _heartbeat_loop(self) -> None:
        interval = self.stale_after / 4
        while True:
            await asyncio.sleep(interval)
            pks = list(self._claimed)
            if not pks:
                continue
            try:
                await self.run_sync(self.store.inbox_heartbeat, SOURCE, self.worker_id, pks)
            except Exception as exc:  # the database is down: the claims may lapse, and the events are taken over
                log.warning("line worker: renewing %d claim(s) failed (%s)", len(pks), type(exc).__name__)

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
