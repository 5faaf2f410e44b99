"""The channel inbox and the sent-answer ledger, on a connection the caller owns (as `Conversations` is).

The inbox is the durable queue between a channel's webhook and its workers: events are accepted (deduplicated on the
channel's event id) before the webhook answers, claimed one conversation at a time per worker across processes,
renewed by heartbeats, taken over when their worker dies, and emptied of the user's words once finished. The ledger
records which answers (and which send attempts) went out, so that a retried or taken-over event never sends twice.

`SQLStore.inbox_*`, `mark_sent`, `unmark_sent` and `was_sent` are one-transaction wrappers over these.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, delete, func, or_, select, update

from bot.store import schema
from bot.store.base import InboxEvent, utcnow
from bot.store.statements import insert_ignore, insert_ignore_many

log = logging.getLogger(__name__)

# Stored errors are for operators; a bounded length keeps a runaway traceback out of the table.
ERROR_MAX_CHARS = 2000
FORGOTTEN_KEY = "forgotten"  # the conversation key of finished inbox events whose user asked to be forgotten

I = schema.inbox  # noqa: E741 - reads like the table's role in the claim queries
K = schema.sent_keys

LockCandidates = Callable[[Select[Any]], Select[Any]]


def _no_lock(stmt: Select[Any]) -> Select[Any]:
    return stmt


class Inbox:
    """The inbox queries, run on `conn` inside the caller's transaction.

    `lock_candidates` is the backend's way of making claim candidates exclusive to this transaction (PostgreSQL:
    FOR UPDATE SKIP LOCKED; SQLite needs nothing, its writing transactions exclude each other). `max_attempts` bounds
    how many workers in a row may be lost while holding one event before it is given up.
    """

    def __init__(self, conn: Connection, *, max_attempts: int, lock_candidates: LockCandidates = _no_lock) -> None:
        self.conn = conn
        self.max_attempts = max_attempts
        self.lock_candidates = lock_candidates

    def accept_many(self, source: str, events: Sequence[tuple[str, str, str]]) -> list[bool]:
        """(event_id, conversation_key, payload) in order, in one statement: one commit per webhook request (or group
        of them) keeps the acknowledgement fast under bursts. Per event: False when it was accepted before (a
        redelivery), or earlier in the same call."""
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
        inserted = insert_ignore_many(self.conn, I, list(first.values()), ["source", "event_id"], "event_id")
        seen: set[str] = set()
        result = []
        for event_id, _, _ in events:
            result.append(event_id in inserted and event_id not in seen)
            seen.add(event_id)
        return result

    def claim(
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
        conn = self.conn
        # Claim times come from this process's clock: hosts sharing a database need synchronised clocks, and
        # a skew only moves when a claim counts as stale.
        now = utcnow()
        cutoff = now - timedelta(seconds=stale_after_seconds)
        stale = and_(I.c.status == "claimed", I.c.claimed_at < cutoff)
        # A stale claim that already used every attempt is a worker that keeps dying on this event:
        # give up on it instead of crashing the next worker too.
        exhausted_stmt = self.lock_candidates(
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
        candidates_stmt = self.lock_candidates(candidates_stmt.order_by(I.c.pk).limit(limit))
        candidates = conn.execute(candidates_stmt).all()
        claim = [row.pk for row in self._drop_blocked(source, worker_id, cutoff, candidates)]
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
        self, source: str, worker_id: str, cutoff: datetime, candidates: Sequence[Row[Any]]
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
        others = self.conn.execute(
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

    def done(self, event_pk: int) -> None:
        # The payload holds the user's message: once handled, only the id is kept (for the dedupe).
        values = {"status": "done", "claimed_by": None, "claimed_at": None, "finished_at": utcnow(), "payload": ""}
        # A row removed meanwhile by delete_user_data is fine: nothing is left to finish.
        self.conn.execute(update(I).where(I.c.pk == event_pk).values(values))

    def failed(self, event_pk: int, error: str, *, retry: bool) -> None:
        error = error[:ERROR_MAX_CHARS]
        attempts = self.conn.execute(select(I.c.attempts).where(I.c.pk == event_pk)).scalar()
        if attempts is None:
            return  # removed meanwhile by delete_user_data
        if retry:
            # Released by a live worker, which owns the retry budget (LINE: a time budget). `attempts` counts
            # claims since the last such release, so the stale-claim rule in claim() bounds only workers that die
            # on the event, and an event retried through a long outage survives one worker crash.
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
        self.conn.execute(update(I).where(I.c.pk == event_pk).values(last_error=error, **values))

    def heartbeat(self, source: str, worker_id: str, event_pks: Sequence[int]) -> int:
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
        return int(self.conn.execute(stmt).rowcount)

    def forget(self, conversation_key: str) -> int:
        """The finished events of `conversation_key` keep only their ids (for the dedupe of redeliveries): payload,
        error and the key (which names the user) go. Unfinished ones (messages sent after a deletion request) stay."""
        stmt = (
            update(I)
            .where(I.c.conversation_key == conversation_key, I.c.status.in_(("done", "failed")))
            .values(payload="", last_error=None, conversation_key=FORGOTTEN_KEY)
        )
        return int(self.conn.execute(stmt).rowcount)

    def delete_key(self, conversation_key: str) -> int:
        """Every event of `conversation_key`, finished or not (the user's data is being deleted)."""
        return int(self.conn.execute(delete(I).where(I.c.conversation_key == conversation_key)).rowcount)

    def pending_count(self, source: str) -> int:
        stmt = select(func.count()).where(I.c.source == source, I.c.status.in_(("pending", "claimed")))
        return int(self.conn.execute(stmt).scalar_one())

    def purge(self, source: str, *, older_than_seconds: float) -> int:
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        stmt = delete(I).where(I.c.source == source, I.c.status.in_(("done", "failed")), I.c.finished_at < cutoff)
        return int(self.conn.execute(stmt).rowcount)


class SentLedger:
    """Keys of what went out (an answer, an attempt at a reply), on `conn` inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def mark(self, key: str) -> bool:
        """Record `key`; False when it was recorded before."""
        return insert_ignore(self.conn, K, {"key": key, "sent_at": utcnow()}, ["key"])

    def unmark(self, key: str) -> bool:
        """Take `key` back (a reply attempt that LINE certainly refused); False when it was not recorded."""
        return int(self.conn.execute(delete(K).where(K.c.key == key)).rowcount) > 0

    def has(self, key: str) -> bool:
        return self.conn.execute(select(K.c.key).where(K.c.key == key)).first() is not None


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
