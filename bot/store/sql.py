"""The store on SQLAlchemy Core, shared by both backends.

Subclasses override only what really differs between SQLite and PostgreSQL: the dialect's insert-or-ignore and
upsert, how a writing transaction begins, how claim candidates are locked, and how concurrent migrations are
serialised. The queries live on the caller's connection in `Conversations`, `Desk`, `Inbox` and `SentLedger`;
the methods here are one-transaction wrappers over them.
"""

from __future__ import annotations

import json
import logging
from abc import ABC
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, Select, text

from bot.store.base import AlreadyBound, ConversationState, InboxEvent, Role, Turn
from bot.store.conversations import Conversations
from bot.store.desk import Desk
from bot.store.inbox import Inbox, SentLedger

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 5


def json_dumps(value: Any) -> str:
    # Japanese stays readable in the database, and half the size of \uXXXX escapes.
    return json.dumps(value, ensure_ascii=False)


class SQLStore(ABC):
    """Implements `bot.store.base.Store` for any SQLAlchemy engine; see SQLiteStore and PostgresStore."""

    backend: ClassVar[str]

    def __init__(self, engine: Engine, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.engine = engine
        self.max_attempts = max_attempts

    # ----- backend hooks -------------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that will write; SQLite takes the write lock up front here."""
        with self.engine.begin() as conn:
            yield conn

    def _lock_candidates(self, stmt: Select[Any]) -> Select[Any]:
        """Make the claim's candidate rows exclusive to this transaction (nothing to add where writes serialise)."""
        return stmt

    def _migration_lock(self, conn: Connection) -> None:
        """Serialise concurrent `upgrade()` calls inside the migration transaction."""
        return None  # where writing transactions already exclude each other (SQLite)

    # ----- lifecycle -----------------------------------------------------------------------------------------

    def upgrade(self) -> str:
        """`alembic upgrade head` in one locked transaction: idempotent, and safe when processes start together.

        Returns the revision the database is at afterwards.
        """
        from bot.store.migrations import upgrade_connection

        with self._write() as conn:
            self._migration_lock(conn)
            return upgrade_connection(conn)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    # ----- the caller's transaction and the conversation lock ---------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Conversations]:
        """One writing transaction for the caller's conversation queries: committed when the block ends, rolled
        back when it raises."""
        with self._write() as conn:
            yield Conversations(conn)

    @contextmanager
    def desk(self) -> Iterator[Desk]:
        """One writing transaction for the handoff queue, operators, sessions and the audit log."""
        with self._write() as conn:
            yield Desk(conn)

    @contextmanager
    def desk_read(self) -> Iterator[Desk]:
        """A read-only transaction for the console's pages."""
        with self._read() as conn:
            yield Desk(conn)

    @contextmanager
    def conversation_lock(self, conversation_id: str) -> Iterator[None]:
        """Excludes other processes' turns and deletions of this conversation while held.

        Nothing here: one process per SQLite file is the supported set-up, and the engine's in-process lock covers
        it. PostgresStore takes an advisory lock.
        """
        yield

    # ----- conversations (each a transaction of its own) ---------------------------------------------------------

    def add_turn(
        self,
        conversation_id: str,
        role: Role,
        text: str,
        *,
        answer: dict[str, Any] | None = None,
        channel_message_id: str | None = None,
    ) -> int:
        with self.transaction() as tx:
            return tx.add_turn(conversation_id, role, text, answer=answer, channel_message_id=channel_message_id)

    def recent_turns(self, conversation_id: str, limit: int) -> list[Turn]:
        with self._read() as conn:
            return Conversations(conn).recent_turns(conversation_id, limit)

    def answer_to(self, conversation_id: str, channel_message_id: str) -> Turn | None:
        with self._read() as conn:
            return Conversations(conn).answer_to(conversation_id, channel_message_id)

    def get_state(self, conversation_id: str) -> ConversationState | None:
        with self._read() as conn:
            return Conversations(conn).get_state(conversation_id)

    def save_state(self, conversation_id: str, state: ConversationState) -> None:
        with self.transaction() as tx:
            tx.save_state(conversation_id, state)

    def delete_conversation(self, conversation_id: str) -> int:
        with self.transaction() as tx:
            return tx.delete(conversation_id)

    def delete_turn_by_channel_message_id(self, conversation_id: str, channel_message_id: str) -> bool:
        with self.transaction() as tx:
            return tx.delete_turn_by_channel_message_id(conversation_id, channel_message_id)

    def conversation_exists(self, conversation_id: str) -> bool:
        with self._read() as conn:
            return Conversations(conn).exists(conversation_id)

    def prune_turns(self, conversation_id: str, keep: int) -> int:
        with self.transaction() as tx:
            return tx.prune_turns(conversation_id, keep)

    # ----- feedback ------------------------------------------------------------------------------------------

    def add_feedback(self, conversation_id: str, turn_id: int, helpful: bool, comment: str | None) -> int:
        with self.transaction() as tx:
            return tx.add_feedback(conversation_id, turn_id, helpful, comment)

    # ----- web visitor binding -------------------------------------------------------------------------------

    def bind_conversation(self, conversation_id: str, owner_token_hash: str) -> None:
        with self.transaction() as tx:
            owner = tx.bind(conversation_id, owner_token_hash)
        if owner != owner_token_hash:
            raise AlreadyBound("conversation is bound to another owner")

    def owner_of(self, conversation_id: str) -> str | None:
        with self._read() as conn:
            return Conversations(conn).owner_of(conversation_id)

    # ----- channel inbox and sent-answer ledger (each call a transaction of its own) ----------------------------

    def _inbox(self, conn: Connection) -> Inbox:
        return Inbox(conn, max_attempts=self.max_attempts, lock_candidates=self._lock_candidates)

    def inbox_accept(self, source: str, event_id: str, conversation_key: str, payload: str) -> bool:
        return self.inbox_accept_many(source, [(event_id, conversation_key, payload)])[0]

    def inbox_accept_many(self, source: str, events: Sequence[tuple[str, str, str]]) -> list[bool]:
        """One statement and one transaction for a whole webhook request (or a group of them): see Inbox.accept_many."""
        with self._write() as conn:
            return self._inbox(conn).accept_many(source, events)

    def inbox_claim(
        self, source: str, worker_id: str, *, limit: int = 10, stale_after_seconds: float = 300
    ) -> list[InboxEvent]:
        with self._write() as conn:
            return self._inbox(conn).claim(source, worker_id, limit=limit, stale_after_seconds=stale_after_seconds)

    def inbox_done(self, event_pk: int) -> None:
        with self._write() as conn:
            self._inbox(conn).done(event_pk)

    def inbox_failed(self, event_pk: int, error: str, *, retry: bool) -> None:
        with self._write() as conn:
            self._inbox(conn).failed(event_pk, error, retry=retry)

    def inbox_heartbeat(self, source: str, worker_id: str, event_pks: Sequence[int]) -> int:
        with self._write() as conn:
            return self._inbox(conn).heartbeat(source, worker_id, event_pks)

    def inbox_forget(self, conversation_key: str) -> int:
        with self._write() as conn:
            return self._inbox(conn).forget(conversation_key)

    def inbox_pending_count(self, source: str) -> int:
        with self._read() as conn:
            return self._inbox(conn).pending_count(source)

    def inbox_purge(self, source: str, *, older_than_seconds: float) -> int:
        with self._write() as conn:
            return self._inbox(conn).purge(source, older_than_seconds=older_than_seconds)

    def mark_sent(self, key: str) -> bool:
        with self._write() as conn:
            return SentLedger(conn).mark(key)

    def unmark_sent(self, key: str) -> bool:
        with self._write() as conn:
            return SentLedger(conn).unmark(key)

    def was_sent(self, key: str) -> bool:
        with self._read() as conn:
            return SentLedger(conn).has(key)

    # ----- privacy -------------------------------------------------------------------------------------------

    def delete_user_data(self, conversation_id: str, *, conversation_key: str | None = None) -> int:
        """Everything kept about a conversation; the inbox key defaults to the conversation id."""
        key = conversation_id if conversation_key is None else conversation_key
        with self.transaction() as tx:
            removed = tx.delete(conversation_id) + tx.unbind(conversation_id)
            removed += self._inbox(tx.conn).delete_key(key)
        return removed
