"""Sending to LINE through the SDK's AsyncMessagingApi: explicit timeouts, bounded retries, honest outcomes.

What a failure means decides what may be retried without sending an answer twice:
- reply: LINE documents that an error response means nothing was sent, so 429 and 5xx are retried with the same
  token. A timeout or a dropped connection is different: the reply may have gone out. If a retry after such an
  ambiguous attempt is told "Invalid reply token", the token was most likely used by that attempt: PROBABLY_SENT.
  "Invalid reply token" on a clean first attempt means the token expired: TOKEN_INVALID (the caller pushes).
- push: always with an `X-Line-Retry-Key`; LINE runs a key at most once and answers 409 to a repeat, so push is
  retried on 429, 5xx and timeouts, and a 409 counts as delivered.
- any other 4xx: REJECTED, never retried (it would fail the same way).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
from linebot.v3.messaging import (
    AsyncMessagingApi,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
)
from linebot.v3.messaging.exceptions import ApiException

log = logging.getLogger(__name__)

MAX_BACKOFF = 8.0
LOADING_SECONDS = 20  # LINE accepts 5..60 in steps of 5; a new message from us ends it early


class Outcome(StrEnum):
    SENT = "sent"
    DUPLICATE = "duplicate"  # push: the retry key was accepted before (409)
    PROBABLY_SENT = "probably_sent"  # reply: token used up after an attempt whose outcome we could not see
    TOKEN_INVALID = "token_invalid"  # reply: expired or unknown token, nothing sent
    UNAVAILABLE = "unavailable"  # retries exhausted; every failure was a definite "not sent"
    UNKNOWN = "unknown"  # retries exhausted; at least one attempt may have been delivered
    REJECTED = "rejected"  # 4xx: the request itself is wrong

    @property
    def delivered(self) -> bool:
        return self in (Outcome.SENT, Outcome.DUPLICATE, Outcome.PROBABLY_SENT)


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    status: int | None = None
    line_request_id: str | None = None
    detail: str = ""
    attempts: int = 1


def _error_message(body: Any) -> str:
    if not body:
        return ""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return str(body)[:200]
    if not isinstance(data, dict):
        return ""
    details = data.get("details") or []
    parts = [str(data.get("message", ""))]
    parts += [f"{d.get('property', '')}: {d.get('message', '')}" for d in details if isinstance(d, dict)][:5]
    return "; ".join(p for p in parts if p)[:500]


class LineSender:
    def __init__(
        self,
        api: AsyncMessagingApi,
        *,
        timeout: float,
        attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = MAX_BACKOFF,
        metrics: Any = None,
    ) -> None:
        self.api = api
        self.metrics = metrics
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay

    def _client_timeout(self, total: float | None = None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=total or self.timeout)

    async def reply(
        self, reply_token: str, messages: list[dict[str, Any]], *, in_flight: InFlight | None = None
    ) -> SendResult:
        """Reply with retries. `in_flight`, when given, is told before every attempt and after every attempt that
        certainly sent nothing while no earlier one may have: a worker killed in between leaves an exact record of
        whether a reply may be out (see InFlight)."""
        try:
            request = ReplyMessageRequest.from_dict({"replyToken": reply_token, "messages": messages})
        except ValueError as exc:  # the SDK's own checks (e.g. more than 5 messages): a bug, never retried
            return SendResult(Outcome.REJECTED, None, None, f"invalid request: {type(exc).__name__}", 0)
        return await self._send(
            "reply",
            lambda: self.api.reply_message_with_http_info(request, _request_timeout=self._client_timeout()),
            in_flight,
        )

    async def push(self, to: str, messages: list[dict[str, Any]], retry_key: str) -> SendResult:
        try:
            request = PushMessageRequest.from_dict({"to": to, "messages": messages})
        except ValueError as exc:
            return SendResult(Outcome.REJECTED, None, None, f"invalid request: {type(exc).__name__}", 0)
        return await self._send(
            "push",
            lambda: self.api.push_message_with_http_info(
                request, x_line_retry_key=retry_key, _request_timeout=self._client_timeout()
            ),
        )

    async def show_loading(self, chat_id: str, seconds: int = LOADING_SECONDS) -> bool:
        """Best effort, one attempt with a short timeout: the answer must not wait for the animation."""
        seconds = min(60, max(5, 5 * round(seconds / 5)))
        request = ShowLoadingAnimationRequest(chatId=chat_id, loadingSeconds=seconds)
        timeout = min(self.timeout, 3.0)
        try:
            async with asyncio.timeout(timeout + 0.5):
                await self.api.show_loading_animation_with_http_info(
                    request, _request_timeout=self._client_timeout(timeout)
                )
            return True
        except ApiException as exc:
            log.info("line: loading animation refused (%s %s)", exc.status, _error_message(exc.body))
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.info("line: loading animation failed: %s", type(exc).__name__)
        return False

    async def _send(self, op: str, call: Any, in_flight: InFlight | None = None) -> SendResult:
        started = time.perf_counter()
        result = await self._send_with_retries(op, call, in_flight)
        if self.metrics is not None:
            self.metrics.observe(
                "line_send_seconds",
                "Time to send to LINE, retries included, by method and outcome",
                time.perf_counter() - started,
                method=op,
                outcome=result.outcome.value,
            )
        return result

    async def _send_with_retries(self, op: str, call: Any, in_flight: InFlight | None = None) -> SendResult:
        ambiguous = False
        last = SendResult(Outcome.UNAVAILABLE)
        for attempt in range(1, self.attempts + 1):
            retry_after: float | None = None
            certainly_not_sent = False
            if in_flight is not None and not ambiguous:
                await in_flight.starting()  # raises when it cannot be recorded: then nothing is sent
            try:
                async with asyncio.timeout(self.timeout + 1.0):
                    response = await call()
                request_id = (response.headers or {}).get("x-line-request-id")
                return SendResult(Outcome.SENT, response.status_code, request_id, attempts=attempt)
            except ApiException as exc:
                status = int(exc.status or 0)
                message = _error_message(exc.body)
                request_id = (exc.headers or {}).get("x-line-request-id") if exc.headers else None
                if op == "reply" and status == 400 and "invalid reply token" in message.lower():
                    outcome = Outcome.PROBABLY_SENT if ambiguous else Outcome.TOKEN_INVALID
                    return SendResult(outcome, status, request_id, message, attempt)
                if op == "push" and status == 409:
                    return SendResult(Outcome.DUPLICATE, status, request_id, message, attempt)
                if status != 429 and status < 500:
                    log.error("line: %s rejected (%s, LINE request %s): %s", op, status, request_id, message)
                    return SendResult(Outcome.REJECTED, status, request_id, message, attempt)
                last = SendResult(Outcome.UNAVAILABLE, status, request_id, message, attempt)
                certainly_not_sent = True  # LINE documents that an error response means nothing was sent
                retry_after = _retry_after(exc.headers)
                log.warning("line: %s attempt %d/%d failed with %s", op, attempt, self.attempts, status)
            except aiohttp.ClientConnectorError as exc:
                # The connection was never made: certainly not sent.
                last = SendResult(Outcome.UNAVAILABLE, None, None, type(exc).__name__, attempt)
                certainly_not_sent = True
                log.warning("line: %s attempt %d/%d could not connect", op, attempt, self.attempts)
            except (TimeoutError, aiohttp.ClientError) as exc:
                ambiguous = True
                last = SendResult(Outcome.UNKNOWN, None, None, type(exc).__name__, attempt)
                log.warning(
                    "line: %s attempt %d/%d: %s (outcome unknown)", op, attempt, self.attempts, type(exc).__name__
                )
            if in_flight is not None and certainly_not_sent and not ambiguous:
                await in_flight.refused()
            if attempt < self.attempts:
                await asyncio.sleep(self._delay(attempt, retry_after))
        outcome = Outcome.UNKNOWN if ambiguous else Outcome.UNAVAILABLE
        return SendResult(outcome, last.status, last.line_request_id, last.detail, self.attempts)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return backoff * (0.5 + random.random() / 2)  # jitter: many workers must not retry in lockstep


class InFlight:
    """Keeps "a reply to this event may be out" true whenever it is, and only then, across crashes.

    `starting()` runs before an attempt (the caller records the mark); `refused()` after an attempt LINE certainly
    did not deliver, when no earlier attempt may have been (the caller takes the mark back). A worker killed while
    the sender backs off after a 500 thus leaves no mark, and the worker that takes the event over sends the answer
    (reply while the token lasts, push after); killed while a request is out, it leaves the mark, and the next
    worker never pushes a second copy.
    """

    def __init__(self, starting: Callable[[], Awaitable[Any]], refused: Callable[[], Awaitable[Any]]) -> None:
        self._starting = starting
        self._refused = refused

    async def starting(self) -> None:
        await self._starting()

    async def refused(self) -> None:
        try:
            await self._refused()
        except Exception as exc:  # the mark stays: the next worker treats the reply as possibly sent (no duplicate)
            log.warning("line: a refused reply attempt could not be recorded (%s)", type(exc).__name__)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
