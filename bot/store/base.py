"""The persistent store's interface and the value types it hands out.

Methods are synchronous on purpose: SQLite and psycopg are blocking drivers, and the async callers (FastAPI, the LINE
worker) run each call in a thread. Keeping one sync interface keeps both backends honest about what is atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field, field_validator

if TYPE_CHECKING:
    from bot.store.conversations import Conversations
    from bot.store.desk import Desk


def utcnow() -> datetime:
    """Every time the store writes is timezone-aware UTC."""
    return datetime.now(UTC)


Role = Literal["user", "bot", "consultant"]
ROLES: frozenset[str] = frozenset({"user", "bot", "consultant"})

# The summary is re-sent with every turn (and may go to an LLM), so it must stay small whatever the caller does.
SUMMARY_MAX_CHARS = 1000
# The step checklist: a client can check off any text, so it is bounded here, whatever the caller does; the most
# recent steps are kept (an article's whole action plan is about 15 steps).
DONE_STEPS_MAX = 100
STEP_MAX_CHARS = 200


class StoreError(Exception):
    """Base class of the store's own errors (driver errors pass through as SQLAlchemy exceptions)."""


class NotFound(StoreError):
    """The referenced row does not exist, or does not belong to the given conversation."""


class AlreadyBound(StoreError):
    """The conversation is bound to another owner; a conversation is never silently re-bound."""


@dataclass(frozen=True, slots=True)
class Turn:
    id: int
    conversation_id: str
    role: Role
    text: str
    answer: dict[str, Any] | None
    channel_message_id: str | None
    created_at: datetime


class ConversationState(BaseModel):
    """What the dialogue manager remembers between turns (stored as one JSON document)."""

    topic: str | None = None
    article_id: str | None = None
    summary: str = ""
    pending_choices: list[str] = Field(default_factory=list)
    done_steps: list[str] = Field(default_factory=list)
    last_kind: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("summary")
    @classmethod
    def _bound_summary(cls, value: str) -> str:
        # Keep the most recent part: the summary is appended to as the conversation goes on.
        return value if len(value) <= SUMMARY_MAX_CHARS else value[-SUMMARY_MAX_CHARS:]

    @field_validator("done_steps")
    @classmethod
    def _bound_steps(cls, value: list[str]) -> list[str]:
        return bounded_steps(value)


def bounded_steps(steps: list[str]) -> list[str]:
    """At most DONE_STEPS_MAX steps of at most STEP_MAX_CHARS each, the most recent kept."""
    return [step[:STEP_MAX_CHARS] for step in steps[-DONE_STEPS_MAX:]]


InboxStatus = Literal["pending", "claimed", "done", "failed"]


@dataclass(frozen=True, slots=True)
class InboxEvent:
    pk: int
    source: str
    event_id: str
    conversation_key: str
    payload: str
    attempts: int  # claims since the event was last released by a live worker, this one included
    accepted_at: datetime


@runtime_checkable
class Store(Protocol):
    """Conversations, feedback, web bindings, the channel inbox and the sent-answer ledger."""

    # The caller's transaction and the conversation lock
    def transaction(self) -> AbstractContextManager[Conversations]:
        """One writing transaction for several conversation queries: all commit together or none does."""
        ...

    def desk(self) -> AbstractContextManager[Desk]:
        """One writing transaction for the handoff queue, operators, console sessions and the audit log."""
        ...

    def desk_read(self) -> AbstractContextManager[Desk]:
        """A read-only transaction over the same."""
        ...

    def conversation_lock(self, conversation_id: str) -> AbstractContextManager[None]:
        """Held by a turn or a deletion: other processes' turns and deletions of the conversation wait for it."""
        ...

    # Conversations
    def add_turn(
        self,
        conversation_id: str,
        role: Role,
        text: str,
        *,
        answer: dict[str, Any] | None = None,
        channel_message_id: str | None = None,
    ) -> int: ...

    def recent_turns(self, conversation_id: str, limit: int) -> list[Turn]:
        """The last `limit` turns, oldest first."""
        ...

    def answer_to(self, conversation_id: str, channel_message_id: str) -> Turn | None:
        """The bot turn that answered the stored user message `channel_message_id` (None when not stored)."""
        ...

    def get_state(self, conversation_id: str) -> ConversationState | None: ...

    def save_state(self, conversation_id: str, state: ConversationState) -> None: ...

    def delete_conversation(self, conversation_id: str) -> int:
        """Remove turns, state, feedback and the conversation's handoff; returns the number of rows removed."""
        ...

    def delete_turn_by_channel_message_id(self, conversation_id: str, channel_message_id: str) -> bool: ...

    def conversation_exists(self, conversation_id: str) -> bool:
        """True when the conversation has turns, state or an owner binding."""
        ...

    def prune_turns(self, conversation_id: str, keep: int) -> int:
        """Keep only the newest `keep` turns; returns the number removed."""
        ...

    # Feedback
    def add_feedback(self, conversation_id: str, turn_id: int, helpful: bool, comment: str | None) -> int: ...

    # Web visitor binding
    def bind_conversation(self, conversation_id: str, owner_token_hash: str) -> None:
        """Idempotent for the same owner; raises AlreadyBound for another one."""
        ...

    def owner_of(self, conversation_id: str) -> str | None: ...

    # Channel inbox
    def inbox_accept(self, source: str, event_id: str, conversation_key: str, payload: str) -> bool:
        """False when (source, event_id) was accepted before: the durable dedupe of redeliveries."""
        ...

    def inbox_accept_many(self, source: str, events: Sequence[tuple[str, str, str]]) -> list[bool]:
        """inbox_accept for (event_id, conversation_key, payload) items, in one transaction."""
        ...

    def inbox_claim(
        self, source: str, worker_id: str, *, limit: int = 10, stale_after_seconds: float = 300
    ) -> list[InboxEvent]: ...

    def inbox_done(self, event_pk: int) -> None: ...

    def inbox_failed(self, event_pk: int, error: str, *, retry: bool) -> None:
        """retry=True: pending again (the caller owns the retry budget); retry=False: failed for good."""
        ...

    def inbox_heartbeat(self, source: str, worker_id: str, event_pks: Sequence[int]) -> int:
        """Renew the worker's live claims on these events; returns how many were renewed."""
        ...

    def inbox_forget(self, conversation_key: str) -> int:
        """Finished events of that key keep only their ids; returns how many were emptied."""
        ...

    def inbox_pending_count(self, source: str) -> int:
        """Events accepted but not finished (pending or claimed)."""
        ...

    def inbox_purge(self, source: str, *, older_than_seconds: float) -> int:
        """Forget finished events older than that (after LINE's redelivery window); returns rows removed."""
        ...

    # Sent-answer ledger
    def mark_sent(self, key: str) -> bool:
        """Record `key`; False when it was recorded before."""
        ...

    def unmark_sent(self, key: str) -> bool:
        """Take `key` back; False when it was not recorded."""
        ...

    def was_sent(self, key: str) -> bool: ...

    # Privacy
    def delete_user_data(self, conversation_id: str, *, conversation_key: str | None = None) -> int:
        """delete_conversation, plus the inbox events of `conversation_key` (default: the id) and the binding."""
        ...

    # Lifecycle
    def ping(self) -> None: ...

    def close(self) -> None: ...
