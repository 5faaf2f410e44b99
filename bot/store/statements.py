"""Insert-or-ignore and upsert in the dialect of the connection they run on (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def insert_ignore(conn: Connection, table: Table, values: Mapping[str, Any], keys: Sequence[str]) -> bool:
    """Insert unless a row with the same `keys` exists; True when inserted."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(table).values(dict(values)).on_conflict_do_nothing(index_elements=list(keys))
    # RETURNING, not rowcount: drivers do not reliably report rowcount for INSERT.
    return conn.execute(stmt.returning(*table.primary_key.columns)).first() is not None


def upsert(
    conn: Connection, table: Table, values: Mapping[str, Any], keys: Sequence[str], update: Sequence[str]
) -> None:
    """Insert, or update the `update` columns of the row with the same `keys`."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(table).values(dict(values))
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update})
    conn.execute(stmt)


def insert_ignore_many(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str], returning: str
) -> set[Any]:
    """One multi-row insert that skips rows whose `keys` exist; the `returning` column's values of the rows inserted.

    One statement instead of one per row: under a webhook burst the Python work per statement, not the database,
    was what a request waited for."""
    if not rows:
        return set()
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(table).values([dict(row) for row in rows]).on_conflict_do_nothing(index_elements=list(keys))
    return set(conn.execute(stmt.returning(table.c[returning])).scalars())
