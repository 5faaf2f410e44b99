"""The store on SQLAlchemy Core, shared by both backends.

Subclasses override only what really differs between SQLite and PostgreSQL: the dialect's insert-or-ignore and
upsert, how a writing transaction begins, how claim candidates are locked, and how concurrent migrations are
serialised. Everything else (queries, the claim rules, retry bounds) lives here once.
"""

from __future__ import annotations

import json
import logging
from abc import ABC
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    and_,
    delete,
    func,
    or_,
    select,
    text,
    update,
)

from bot.store import schema
from bot.store.base import (
    AlreadyBound,
    ConversationState,
    InboxEvent,
    Role,
    Turn,
)
from bot.store.conversations import Conversations
from bot.store.desk import Desk
from bot.store.statements import insert_ignore, insert_ignore_many

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 5
# Stored errors are for operators; a bounded length keeps a runaway traceback out of the table.
ERROR_MAX_CHARS = 2000
FORGOTTEN_KEY = "forgotten"  # the conversation key of finished inbox events whose user asked to be forgotten

T = schema.turns
S = schema.conversation_states
F = schema.feedback
B = schema.bindings
I = schema.inbox  # noqa: E741 - reads like the table's role in the claim queries
K = schema.sent_keys


def utcnow() -> datetime:
    return datetime.now(UTC)


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

    # ----- channel inbox -------------------------------------------------------------------------------------

    def inbox_accept(self, source: str, event_id: str, conversation_key: str, payload: str) -> bool:
        return self.inbox_accept_many(source, [(event_id, conversation_key, payload)])[0]

    def inbox_accept_many(self, source: str, events: Sequence[tuple[str, str, str]]) -> list[bool]:
        """(event_id, conversation_key, payload) in order, in one statement and one transaction: one commit per
        webhook request (or group of them) keeps the acknowledgement fast under bursts. Per event: False when it
        was accepted before (a redelivery), or earlier in the same call."""
        now = utcnow()
        first: dict[str, dict[str, Any]] = {}
        for event_id, conversation_key, payload in events:
            first.setdefault(
                event_id,
                {
                    "source": source,
                    "event_id": event_id,
                    "conversation_key": conversation_key,
                    "payload": payload,
                    "status": "pending",
                    "attempts": 0,
                    "accepted_at": now,
                },
            )
        with self._write() as conn:
            inserted = insert_ignore_many(conn, I, list(first.values()), ["source", "event_id"], "event_id")
        seen: set[str] = set()
        result = []
        for event_id, _, _ in events:
            result.append(event_id in inserted and event_id not in seen)
            seen.add(event_id)
        return result

    def inbox_claim(
        self, source: str, worker_id: str, *, limit: int = 10, stale_after_seconds: float = 300
    ) -> list[InboxEvent]:
        """Claim up to `limit` events in acceptance order, one worker per conversation_key at a time.

        Claimable: pending events, and events whose claim is older than `stale_after_seconds` (their worker
        crashed). A conversation_key with a live claim by another worker is skipped entirely, and an event is
        only claimed together with every unfinished earlier event of its key, so each conversation is processed
        in order by one worker.
        """
        if limit <= 0:
            return []
        # Claim times come from this process's clock: hosts sharing a database need synchronised clocks, and
        # a skew only moves when a claim counts as stale.
        now = utcnow()
        cutoff = now - timedelta(seconds=stale_after_seconds)
        stale = and_(I.c.status == "claimed", I.c.claimed_at < cutoff)
        # A stale claim that already used every attempt is a worker that keeps dying on this event:
        # give up on it instead of crashing the next worker too.
        exhausted_stmt = self._lock_candidates(
            select(I.c.pk).where(I.c.source == source, stale, I.c.attempts >= self.max_attempts)
        )
        # Conversations another worker holds right now: few (at most the events in flight), so they are fetched
        # first and excluded by value; a correlated NOT EXISTS made the claim quadratic in the backlog.
        held_stmt = (
            select(I.c.conversation_key)
            .where(I.c.source == source, I.c.status == "claimed", I.c.claimed_at >= cutoff, I.c.claimed_by != worker_id)
            .distinct()
        )
        claimable = or_(I.c.status == "pending", and_(stale, I.c.attempts < self.max_attempts))
        with self._write() as conn:
            exhausted = conn.execute(exhausted_stmt).scalars().all()
            if exhausted:
                abandoned = f"abandoned: its worker was lost {self.max_attempts} times"
                conn.execute(
                    update(I)
                    .where(I.c.pk.in_(exhausted))
                    .values(
                        status="failed",
                        claimed_by=None,
                        claimed_at=None,
                        finished_at=now,
                        last_error=abandoned,
                        payload="",  # never retried again: the message is not kept
                    )
                )
                log.warning("inbox: gave up on %d event(s) whose workers kept dying", len(exhausted))
            held = conn.execute(held_stmt).scalars().all()
            candidates_stmt: Select[Any] = select(I.c.pk, I.c.conversation_key).where(I.c.source == source, claimable)
            if held:
                candidates_stmt = candidates_stmt.where(I.c.conversation_key.not_in(held))
            candidates_stmt = self._lock_candidates(candidates_stmt.order_by(I.c.pk).limit(limit))
            candidates = conn.execute(candidates_stmt).all()
            claim = [row.pk for row in self._drop_blocked(conn, source, worker_id, cutoff, candidates)]
            if not claim:
                return []
            conn.execute(
                update(I)
                .where(I.c.pk.in_(claim))
                .values(status="claimed", claimed_by=worker_id, claimed_at=now, attempts=I.c.attempts + 1)
            )
            rows = conn.execute(select(I).where(I.c.pk.in_(claim)).order_by(I.c.pk)).all()
        reclaimed = sum(1 for row in rows if row.attempts > 1)
        if reclaimed:
            log.info("inbox: %s reclaimed %d event(s) after a failure or a lost worker", worker_id, reclaimed)
        return [_event(row) for row in rows]

    def _drop_blocked(
        self, conn: Connection, source: str, worker_id: str, cutoff: datetime, candidates: Sequence[Row[Any]]
    ) -> list[Row[Any]]:
        """Keep the candidates whose conversation is not (or no longer) another worker's.

        The candidate query already skips keys with a live foreign claim as seen a moment ago, but on PostgreSQL
        claims commit concurrently and SKIP LOCKED hides rows another claimer is taking right now. So look again
        (a fresh statement sees committed claims) and drop a key's candidates that come after any unfinished event
        we did not get. Under SQLite's single writer this never drops anything.
        """
        if not candidates:
            return []
        keys = {row.conversation_key for row in candidates}
        mine = {row.pk for row in candidates}
        others = conn.execute(
            select(I.c.pk, I.c.conversation_key, I.c.status, I.c.claimed_by, I.c.claimed_at).where(
                I.c.source == source,
                I.c.conversation_key.in_(keys),
                I.c.status.in_(("pending", "claimed")),
                I.c.pk.not_in(mine),
            )
        ).all()
        blocked_after: dict[str, int] = {}  # key -> candidates with a larger pk are blocked
        for row in others:
            live = row.status == "claimed" and row.claimed_at is not None and row.claimed_at >= cutoff
            if live and row.claimed_by == worker_id:
                continue  # our own earlier claim: we already own this conversation
            bound = -1 if live else row.pk  # a live foreign claim blocks the whole key
            key = row.conversation_key
            blocked_after[key] = min(bound, blocked_after.get(key, bound))
        return [row for row in candidates if row.pk <= blocked_after.get(row.conversation_key, row.pk)]

    def inbox_done(self, event_pk: int) -> None:
        # The payload holds the user's message: once handled, only the id is kept (for the dedupe).
        values = {"status": "done", "claimed_by": None, "claimed_at": None, "finished_at": utcnow(), "payload": ""}
        with self._write() as conn:
            # A row removed meanwhile by delete_user_data is fine: nothing is left to finish.
            conn.execute(update(I).where(I.c.pk == event_pk).values(values))

    def inbox_failed(self, event_pk: int, error: str, *, retry: bool) -> None:
        error = error[:ERROR_MAX_CHARS]
        with self._write() as conn:
            attempts = conn.execute(select(I.c.attempts).where(I.c.pk == event_pk)).scalar()
            if attempts is None:
                return  # removed meanwhile by delete_user_data
            if retry:
                # Released by a live worker, which owns the retry budget (LINE: a time budget). `attempts` counts
                # claims since the last such release, so the stale-claim rule in inbox_claim bounds only workers
                # that die on the event, and an event retried through a long outage survives one worker crash.
                values: dict[str, Any] = {"status": "pending", "claimed_by": None, "claimed_at": None, "attempts": 0}
            else:
                # Failed for good: nothing will retry it, so the message goes (only the id stays, for the dedupe).
                values = {
                    "status": "failed",
                    "claimed_by": None,
                    "claimed_at": None,
                    "finished_at": utcnow(),
                    "payload": "",
                }
                log.warning("inbox: event pk=%d failed for good after %d attempt(s)", event_pk, attempts)
            conn.execute(update(I).where(I.c.pk == event_pk).values(last_error=error, **values))

    def inbox_heartbeat(self, source: str, worker_id: str, event_pks: Sequence[int]) -> int:
        """Renew this worker's claims: a live worker's events never look stale, so `stale_after_seconds` can be
        short and a dead worker's events are taken over soon. Returns how many claims were renewed."""
        if not event_pks:
            return 0
        stmt = (
            update(I)
            .where(
                I.c.source == source, I.c.pk.in_(list(event_pks)), I.c.status == "claimed", I.c.claimed_by == worker_id
            )
            .values(claimed_at=utcnow())
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    def inbox_forget(self, conversation_key: str) -> int:
        """The finished events of `conversation_key` keep only their ids (for the dedupe of redeliveries): payload,
        error and the key (which names the user) go. Unfinished ones (messages sent after a deletion request) stay."""
        stmt = (
            update(I)
            .where(I.c.conversation_key == conversation_key, I.c.status.in_(("done", "failed")))
            .values(payload="", last_error=None, conversation_key=FORGOTTEN_KEY)
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    def inbox_pending_count(self, source: str) -> int:
        stmt = select(func.count()).where(I.c.source == source, I.c.status.in_(("pending", "claimed")))
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def inbox_purge(self, source: str, *, older_than_seconds: float) -> int:
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        stmt = delete(I).where(I.c.source == source, I.c.status.in_(("done", "failed")), I.c.finished_at < cutoff)
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    # ----- sent-answer ledger --------------------------------------------------------------------------------

    def mark_sent(self, key: str) -> bool:
        with self._write() as conn:
            return insert_ignore(conn, K, {"key": key, "sent_at": utcnow()}, ["key"])

    def was_sent(self, key: str) -> bool:
        with self._read() as conn:
            return conn.execute(select(K.c.key).where(K.c.key == key)).first() is not None

    # ----- privacy -------------------------------------------------------------------------------------------

    def delete_user_data(self, conversation_id: str, *, conversation_key: str | None = None) -> int:
        """Everything kept about a conversation; the inbox key defaults to the conversation id."""
        key = conversation_id if conversation_key is None else conversation_key
        with self.transaction() as tx:
            removed = tx.delete(conversation_id) + tx.unbind(conversation_id)
            removed += tx.conn.execute(delete(I).where(I.c.conversation_key == key)).rowcount
        return removed


def _event(row: Row[Any]) -> InboxEvent:
    return InboxEvent(
        pk=int(row.pk),
        source=row.source,
        event_id=row.event_id,
        conversation_key=row.conversation_key,
        payload=row.payload,
        attempts=int(row.attempts),
        accepted_at=row.accepted_at,
    )
