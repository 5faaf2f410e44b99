"""PostgreSQL (psycopg 3): for several server processes or hosts sharing one database."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Select, create_engine, select, text
from sqlalchemy import func as sa_func
from sqlalchemy.engine import URL, make_url

from bot.store import schema
from bot.store.sql import DEFAULT_MAX_ATTEMPTS, SQLStore, json_dumps

log = logging.getLogger(__name__)


def _int4(value: int) -> int:
    """An unsigned 32-bit CRC as the signed int4 PostgreSQL's advisory-lock functions take."""
    return value - (1 << 32) if value >= 1 << 31 else value


# One fixed advisory-lock key for "the store's migrations", derived from a name so it is recognisable in pg_locks.
MIGRATION_LOCK_KEY = zlib.crc32(b"bot.store.migrations")
# Conversation locks use the two-int form (a key space apart from the one-bigint migration lock): this class, and
# the conversation id's CRC. Two ids with one CRC only wait for each other, which is harmless.
CONVERSATION_LOCK_CLASS = _int4(zlib.crc32(b"bot.store.conversation"))
# How long a turn or a deletion waits for another worker's turn of the same conversation (an LLM turn takes tens
# of seconds at worst) before it fails instead of hanging.
CONVERSATION_LOCK_WAIT = "90s"
CONNECT_TIMEOUT_SECONDS = 5


def psycopg_url(url: str | URL) -> URL:
    """`postgresql://`, `postgres://` or `postgresql+<driver>://` -> the same URL on the psycopg 3 driver."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    return parsed.set(drivername="postgresql+psycopg")


class PostgresStore(SQLStore):
    backend = "postgresql"

    def __init__(self, url: str | URL, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS, pool_size: int = 5) -> None:
        engine = create_engine(
            psycopg_url(url),
            # Bound parameters carry message text; keep them out of exception messages that may get logged.
            hide_parameters=True,
            json_serializer=json_dumps,
            pool_size=pool_size,
            pool_pre_ping=True,  # survive a database restart without failing the first request after it
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
        super().__init__(engine, max_attempts=max_attempts)

    @contextmanager
    def conversation_lock(self, conversation_id: str) -> Iterator[None]:
        """A transaction-scoped advisory lock on its own connection: every worker's turns and deletions of the
        conversation take it, so they run one at a time across processes and hosts. A worker that dies loses its
        connection, and PostgreSQL releases the lock with it."""
        key = _int4(zlib.crc32(conversation_id.encode()))
        conn = self.engine.connect()
        try:
            conn.begin()
            conn.execute(text(f"SET LOCAL lock_timeout = '{CONVERSATION_LOCK_WAIT}'"))
            conn.execute(select(sa_func.pg_advisory_xact_lock(CONVERSATION_LOCK_CLASS, key)))
        except BaseException:
            conn.close()
            raise
        try:
            yield
        finally:
            try:
                conn.rollback()  # releases the lock; nothing was written on this connection
                conn.close()
            except Exception as exc:  # the database went away: the lock went with the connection
                log.warning("store: releasing a conversation lock failed (%s); the connection is dropped", exc)
                conn.invalidate()

    def _lock_candidates(self, stmt: Select[Any]) -> Select[Any]:
        # Concurrent claimers skip each other's rows instead of queueing behind them; the per-conversation
        # re-check in SQLStore._drop_blocked covers what SKIP LOCKED hides.
        return stmt.with_for_update(skip_locked=True, of=schema.inbox)

    def _migration_lock(self, conn: Connection) -> None:
        # Transaction-scoped: released by the commit that makes the new schema visible to the waiting process.
        conn.execute(select(sa_func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
