"""PostgreSQL (psycopg 3): for several server processes or hosts sharing one database."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, Table, create_engine, select
from sqlalchemy import func as sa_func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL, make_url

from bot.store import schema
from bot.store.sql import DEFAULT_MAX_ATTEMPTS, SQLStore, json_dumps

# One fixed advisory-lock key for "the store's migrations", derived from a name so it is recognisable in pg_locks.
MIGRATION_LOCK_KEY = zlib.crc32(b"bot.store.migrations")
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

    def _insert_ignore(self, conn: Connection, table: Table, values: Mapping[str, Any], keys: Sequence[str]) -> bool:
        stmt = pg_insert(table).values(dict(values)).on_conflict_do_nothing(index_elements=list(keys))
        # RETURNING, not rowcount: drivers do not reliably report rowcount for INSERT.
        return conn.execute(stmt.returning(*table.primary_key.columns)).first() is not None

    def _upsert(
        self, conn: Connection, table: Table, values: Mapping[str, Any], keys: Sequence[str], update: Sequence[str]
    ) -> None:
        stmt = pg_insert(table).values(dict(values))
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update})
        conn.execute(stmt)

    def _lock_candidates(self, stmt: Select[Any]) -> Select[Any]:
        # Concurrent claimers skip each other's rows instead of queueing behind them; the per-conversation
        # re-check in SQLStore._drop_blocked covers what SKIP LOCKED hides.
        return stmt.with_for_update(skip_locked=True, of=schema.inbox)

    def _migration_lock(self, conn: Connection) -> None:
        # Transaction-scoped: released by the commit that makes the new schema visible to the waiting process.
        conn.execute(select(sa_func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
