"""What the worker does with one inbox event: run the engine, render, and deliver exactly once.

Delivery, and why no answer goes out twice (the sent-answer ledger keys, all per webhookEventId):
- `line:sent:<id>`: delivered. Checked first; a finished event is never sent again.
- `line:reply-try:<id>`: a reply request went out. Written *before* the request, so after a crash we know that a
  reply may have been delivered.
- `line:reply-failed:<id>`: that reply certainly did not go out (LINE answered with an error).
Reply when the token is fresh (within `reply_window` of the webhook, and the event under 20 minutes old), else push
with a retry key derived from the event id (the same key after a restart, so LINE drops a repeat). After a crash in
the middle of a reply, the reply is tried again while the token is fresh ("Invalid reply token" then means the first
one went out); when that cannot be known, the answer is not pushed: one lost answer is better than two.

The engine itself is not re-run for an event it already answered (a retry after a send failure): the stored bot turn
that follows the user's message is sent again instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from linebot.v3.webhooks import (
    Event,
    FollowEvent,
    GroupSource,
    JoinEvent,
    LeaveEvent,
    MessageEvent,
    PostbackEvent,
    RoomSource,
    TextMessageContent,
    UnfollowEvent,
    UnsendEvent,
    UserSource,
)

from bot.answer.model import Answer
from bot.api.metrics import ANSWER_HELP, ANSWER_SECONDS
from bot.channels.line import postback, texts
from bot.channels.line.render import RenderOptions, plain_fallback, render_answer, render_text
from bot.channels.line.sender import InFlight, LineSender, Outcome
from bot.channels.line.webhook import addressed_text, conversation_key, inbox_key
from bot.dialogue.engine import DialogueEngine, EngineReply
from bot.store.base import InboxEvent, Store

log = logging.getLogger(__name__)

T = TypeVar("T")
RunSync = Callable[..., Awaitable[Any]]

TOKEN_MAX_EVENT_AGE = 19 * 60  # LINE: a reply token is unusable 20 minutes after the event, redelivered or not
RETRY_KEY_NAMESPACE = uuid.UUID("6f1c2a9e-5b7d-4c1e-9a3f-2d8e4b6c0a17")


class RetryableError(Exception):
    """Try the event again later (LINE unavailable, a store hiccup)."""


class PermanentError(Exception):
    """Give up on the event (LINE rejected the request; retrying would fail the same way)."""


@dataclass(frozen=True)
class Context:
    """One inbox event, decoded."""

    item: InboxEvent
    event: Event
    request_id: str
    received_at: float  # epoch seconds, our clock, when the webhook arrived
    conversation_id: str

    @property
    def event_id(self) -> str:
        return self.item.event_id

    @property
    def source(self) -> Any:
        return self.event.source

    @property
    def in_group(self) -> bool:
        return not isinstance(self.source, UserSource)

    @property
    def user_id(self) -> str | None:
        return getattr(self.source, "user_id", None)

    @property
    def push_target(self) -> str | None:
        if isinstance(self.source, GroupSource):
            return str(self.source.group_id)
        if isinstance(self.source, RoomSource):
            return str(self.source.room_id)
        return self.user_id

    @property
    def reply_token(self) -> str | None:
        return getattr(self.event, "reply_token", None)

    @property
    def log_id(self) -> str:
        return f"{self.request_id}/{self.event_id}"


def decode(item: InboxEvent) -> Context:
    payload = json.loads(item.payload)
    event = Event.from_dict(payload["event"])
    key = conversation_key(event)
    if key is None:
        raise PermanentError("event without a conversation")
    return Context(item, event, str(payload.get("request_id", "-")), float(payload.get("received_at", 0)), key)


class EventProcessor:
    def __init__(
        self,
        *,
        store: Store,
        engine: DialogueEngine,
        sender: LineSender,
        run_sync: RunSync,
        group_keyword: str,
        reply_window: float,
        metrics: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.engine = engine
        self.sender = sender
        self.run_sync = run_sync
        self.group_keyword = group_keyword
        self.reply_window = reply_window
        self.metrics = metrics
        self.clock = clock

    async def apologise(self, item: InboxEvent) -> None:
        """The event's retry budget is spent: push one short apology to whoever is waiting for an answer.

        Only for messages and postbacks (what expects an answer), never when the answer went out after all, and at
        most once (the ledger key, and LINE's retry key should a crash repeat the push)."""
        try:
            ctx = decode(item)
        except (ValueError, KeyError, TypeError, PermanentError):
            return
        if not isinstance(ctx.event, MessageEvent | PostbackEvent) or not ctx.push_target:
            return
        apology_key = f"line:apology:{ctx.event_id}"
        if await self.run_sync(self.store.was_sent, f"line:sent:{ctx.event_id}"):
            return
        if not await self.run_sync(self.store.mark_sent, apology_key):
            return
        retry_key = str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{ctx.event_id}:apology"))
        result = await self.sender.push(ctx.push_target, render_text(texts.APOLOGY), retry_key)
        self._count("line_apologies_total", "Apologies pushed after an event's retry budget ran out")
        log.info("line event %s: apology pushed (%s)", ctx.log_id, result.outcome.value)

    async def process(self, item: InboxEvent) -> None:
        try:
            ctx = decode(item)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"undecodable inbox payload: {type(exc).__name__}") from exc
        event = ctx.event
        log.info("line event %s: %s (attempt %d)", ctx.log_id, type(event).__name__, item.attempts)
        if isinstance(event, MessageEvent):
            await self._on_message(ctx, event)
        elif isinstance(event, PostbackEvent):
            await self._on_postback(ctx, event)
        elif isinstance(event, FollowEvent):
            await self._on_follow(ctx, event)
        elif isinstance(event, UnfollowEvent):
            removed = await self.run_sync(
                self.store.delete_user_data, ctx.conversation_id, conversation_key=inbox_key(ctx.conversation_id)
            )
            log.info("line event %s: user unfollowed, %d stored rows deleted", ctx.log_id, removed)
        elif isinstance(event, JoinEvent):
            text = (
                texts.GROUP_JOIN.format(keyword=self.group_keyword)
                if self.group_keyword
                else texts.GROUP_JOIN_MENTION_ONLY
            )
            await self.deliver(ctx, render_text(text))
        elif isinstance(event, LeaveEvent):
            removed = await self.run_sync(
                self.store.delete_user_data, ctx.conversation_id, conversation_key=inbox_key(ctx.conversation_id)
            )
            log.info("line event %s: removed from a group, %d stored rows deleted", ctx.log_id, removed)
        elif isinstance(event, UnsendEvent):
            removed = await self.run_sync(self._forget_message, ctx.conversation_id, event.unsend.message_id)
            log.info(
                "line event %s: unsent message %s", ctx.log_id, "removed from history" if removed else "not stored"
            )
        else:
            log.info("line event %s: nothing to do for %s", ctx.log_id, type(event).__name__)

    # ----- events --------------------------------------------------------------------------------------------------

    async def _on_message(self, ctx: Context, event: MessageEvent) -> None:
        message = event.message
        if not isinstance(message, TextMessageContent):
            kind = getattr(message, "type", "")
            text = f"{texts.NOT_TEXT.get(kind, texts.NOT_TEXT_DEFAULT)}\n{texts.ASK_FOR_TEXT}"
            await self.deliver(ctx, render_text(text))
            return
        quote = None
        text = message.text
        if ctx.in_group:
            text = addressed_text(message, self.group_keyword) or ""
            quote = message.quote_token  # in a group, quoting shows whom the answer is for
        await self._answer_and_send(ctx, text, channel_message_id=message.id, quote_token=quote)

    async def _on_postback(self, ctx: Context, event: PostbackEvent) -> None:
        data = postback.decode(event.postback.data)
        if data is None:
            log.info("line event %s: postback data is not ours; skipped", ctx.log_id)
            return
        if data.action == "say":
            # Tag the engine's turn with the event so a retry finds the answer instead of asking the engine again.
            await self._answer_and_send(ctx, data.value, channel_message_id=f"postback:{ctx.event_id}")
            return
        before = await self.run_sync(self._done_steps, ctx.conversation_id)
        done = await self.run_sync(self.engine.mark_step_done, ctx.conversation_id, data.value)
        template = texts.STEP_ALREADY_DONE if data.value in before else texts.STEP_DONE
        follow_ups = [self.engine.replies["follow_ups"]["next"], self.engine.replies["follow_ups"]["more"]]
        await self.deliver(
            ctx, render_text(template.format(step=data.value, count=len(done)), quick_replies=follow_ups)
        )

    async def _on_follow(self, ctx: Context, event: FollowEvent) -> None:
        unblocked = bool(event.follow and event.follow.is_unblocked)
        if unblocked:
            # Blocking deleted their data (unfollow); make sure of it before saying so.
            await self.run_sync(self.store.delete_conversation, ctx.conversation_id)
        text = texts.WELCOME_BACK if unblocked else texts.WELCOME
        await self.deliver(ctx, render_text(text, quick_replies=texts.STARTERS))

    async def _answer_and_send(
        self, ctx: Context, text: str, *, channel_message_id: str, quote_token: str | None = None
    ) -> None:
        loading: asyncio.Task[bool] | None = None
        # No "typing…" while a consultant holds the conversation: the bot will not answer.
        if not ctx.in_group and ctx.user_id and self._token_usable(ctx) and not await self.run_sync(self._held, ctx):
            loading = asyncio.create_task(self.sender.show_loading(ctx.user_id))
        try:
            answer = await self._answer(ctx, text, channel_message_id)
            done = frozenset(await self.run_sync(self._done_steps, ctx.conversation_id))
        finally:
            if loading is not None:
                await loading  # never let the animation start after the answer arrived
        if answer is None:
            # A consultant holds the conversation: the message is stored for them and the bot says nothing.
            log.info("line event %s: held for a consultant; nothing sent", ctx.log_id)
            return
        messages = render_answer(answer, self.engine.replies, RenderOptions(quote_token=quote_token, done_steps=done))
        await self.deliver(ctx, messages, fallback=plain_fallback(answer, self.engine.replies))

    async def _answer(self, ctx: Context, text: str, channel_message_id: str) -> Answer | None:
        """The answer to send; None when a consultant holds the conversation (nothing is sent)."""
        if ctx.item.attempts > 1:
            previous: Answer | None = await self.run_sync(
                self._previous_answer, ctx.conversation_id, channel_message_id
            )
            if previous is not None:
                log.info("line event %s: reusing the answer stored by an earlier attempt", ctx.log_id)
                return previous
        started = time.perf_counter()
        reply: EngineReply = await self.run_sync(
            self.engine.handle, ctx.conversation_id, text, channel_message_id=channel_message_id
        )
        if self.metrics is not None:
            self.metrics.observe(ANSWER_SECONDS, ANSWER_HELP, time.perf_counter() - started, channel="line")
        if reply.deleted:  # the user asked for their data to be deleted
            # The engine deleted the conversation; the inbox keeps what LINE delivered under its own key.
            forgotten = await self.run_sync(self.store.inbox_forget, inbox_key(ctx.conversation_id))
            log.info("line event %s: data deleted; %d finished inbox event(s) emptied", ctx.log_id, forgotten)
        return None if reply.held else reply.answer

    # ----- store helpers (sync, run in the worker's threads) ---------------------------------------------------------

    def _held(self, ctx: Context) -> bool:
        with self.store.desk_read() as desk:
            handoff = desk.handoff(ctx.conversation_id)
        return handoff is not None and handoff.holds_bot

    def _done_steps(self, conversation_id: str) -> list[str]:
        state = self.store.get_state(conversation_id)
        return list(state.done_steps) if state else []

    def _previous_answer(self, conversation_id: str, channel_message_id: str) -> Answer | None:
        turns = self.store.recent_turns(conversation_id, 40)
        for i, turn in enumerate(turns):
            if turn.role == "user" and turn.channel_message_id == channel_message_id:
                # Its answer is stored right after it; a held message (a consultant's conversation) has none.
                following = turns[i + 1] if i + 1 < len(turns) and turns[i + 1].role == "bot" else None
                if following is not None and following.answer:
                    return Answer.model_validate(following.answer)
        return None

    def _forget_message(self, conversation_id: str, message_id: str) -> bool:
        """Unsend: drop the message from the history, and its words from the running summary."""
        turns = self.store.recent_turns(conversation_id, 100)
        target = next((t for t in turns if t.role == "user" and t.channel_message_id == message_id), None)
        removed = self.store.delete_turn_by_channel_message_id(conversation_id, message_id)
        state = self.store.get_state(conversation_id) if target is not None else None
        if target is not None and state is not None and state.summary:
            words = " ".join(target.text.split())
            if words and words in state.summary:
                parts = [p for p in state.summary.split(" / ") if p.strip() and p.strip() != words]
                state.summary = " / ".join(parts).replace(words, "").strip(" /")
                self.store.save_state(conversation_id, state)
        return removed

    # ----- delivery --------------------------------------------------------------------------------------------------

    def _token_usable(self, ctx: Context) -> bool:
        now = self.clock()
        event_age = now - ctx.event.timestamp / 1000
        return bool(ctx.reply_token) and now - ctx.received_at < self.reply_window and event_age < TOKEN_MAX_EVENT_AGE

    async def deliver(
        self, ctx: Context, messages: list[dict[str, Any]], fallback: list[dict[str, Any]] | None = None
    ) -> None:
        sent_key = f"line:sent:{ctx.event_id}"
        try_key = f"line:reply-try:{ctx.event_id}"
        failed_key = f"line:reply-failed:{ctx.event_id}"
        if await self.run_sync(self.store.was_sent, sent_key):
            log.info("line event %s: already delivered", ctx.log_id)
            return
        tried = await self.run_sync(self.store.was_sent, try_key)
        failed = tried and await self.run_sync(self.store.was_sent, failed_key)
        token = ctx.reply_token if self._token_usable(ctx) else None

        if tried and not failed:
            # An earlier attempt sent a reply and never learned the outcome (crash, timeouts).
            if token is None:
                log.error(
                    "line event %s: an earlier reply may have been delivered and the token is no longer "
                    "usable; not pushing, to avoid a duplicate",
                    ctx.log_id,
                )
                await self.run_sync(self.store.mark_sent, sent_key)
                return
            result = await self.sender.reply(token, messages)
            if result.outcome in (Outcome.TOKEN_INVALID, Outcome.PROBABLY_SENT):
                log.info("line event %s: reply token already used; the earlier reply was delivered", ctx.log_id)
                await self._delivered(ctx, sent_key, "reply")
                return
            await self._after_reply(ctx, result.outcome, sent_key, failed_key, messages, fallback, token)
            return

        if token is not None and not tried:
            # The try mark is on the ledger exactly while a reply attempt may have reached LINE (see InFlight).
            in_flight = InFlight(
                partial(self.run_sync, self.store.mark_sent, try_key),
                partial(self.run_sync, self.store.unmark_sent, try_key),
            )
            result = await self.sender.reply(token, messages, in_flight=in_flight)
            await self._after_reply(ctx, result.outcome, sent_key, failed_key, messages, fallback, token)
            return
        await self._push(ctx, messages, fallback, sent_key)

    async def _after_reply(
        self,
        ctx: Context,
        outcome: Outcome,
        sent_key: str,
        failed_key: str,
        messages: list[dict[str, Any]],
        fallback: list[dict[str, Any]] | None,
        token: str,
    ) -> None:
        if outcome.delivered:
            await self._delivered(ctx, sent_key, "reply")
            return
        if outcome == Outcome.UNKNOWN:
            self._count("line_send_failures_total", "Sends that failed", method="reply", outcome=outcome.value)
            raise RetryableError("reply outcome unknown after every attempt")
        if outcome == Outcome.REJECTED and fallback:
            # Nothing was sent and the token is still good: say it in plain text instead.
            self._count("line_send_failures_total", "Sends that failed", method="reply", outcome=outcome.value)
            result = await self.sender.reply(token, fallback)
            if result.outcome.delivered:
                await self._delivered(ctx, sent_key, "reply")
                return
            outcome = result.outcome
            if outcome == Outcome.UNKNOWN:
                raise RetryableError("fallback reply outcome unknown")
            messages, fallback = fallback, None
        # Certainly not sent (expired token, LINE unavailable, rejected): push instead.
        await self.run_sync(self.store.mark_sent, failed_key)
        log.info("line event %s: reply not possible (%s); pushing", ctx.log_id, outcome.value)
        await self._push(ctx, messages, fallback, sent_key)

    async def _push(
        self, ctx: Context, messages: list[dict[str, Any]], fallback: list[dict[str, Any]] | None, sent_key: str
    ) -> None:
        target = ctx.push_target
        if not target:
            raise PermanentError("no push target")
        retry_key = str(uuid.uuid5(RETRY_KEY_NAMESPACE, ctx.event_id))
        result = await self.sender.push(target, messages, retry_key)
        if result.outcome == Outcome.REJECTED and fallback:
            retry_key = str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{ctx.event_id}:plain"))
            result = await self.sender.push(target, fallback, retry_key)
        if result.outcome.delivered:
            await self._delivered(ctx, sent_key, "push")
            return
        self._count("line_send_failures_total", "Sends that failed", method="push", outcome=result.outcome.value)
        if result.outcome == Outcome.REJECTED:
            raise PermanentError(f"push rejected by LINE ({result.status}): {result.detail}")
        raise RetryableError(f"push {result.outcome.value} ({result.status})")

    async def _delivered(self, ctx: Context, sent_key: str, method: str) -> None:
        await self.run_sync(self.store.mark_sent, sent_key)
        self._count("line_messages_sent_total", "Answers delivered to LINE", method=method)
        log.info("line event %s: delivered by %s", ctx.log_id, method)

    def _count(self, name: str, help_text: str, **labels: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, help_text, **labels)
