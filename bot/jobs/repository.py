"""Job postings in the database (both backends): import in one transaction, removal, and the reads search needs.

A feed is imported whole or not at all: its upserts, the removals of `--replace` and the import's log row commit in
one transaction. Expired postings (validThrough past) stay in the table until removed, and are never returned by
`get` or `snapshot`, so they are never shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.jobs.model import Posting
from bot.store import schema
from bot.store.base import utcnow
from bot.store.sql import SQLStore

P = schema.job_postings
L = schema.job_imports
BIG_CHANGE = 5000  # postings: above this, an import reads all hashes at once and refreshes PostgreSQL's statistics
CHUNK = 400  # rows per statement: SQLite allows 32766 bound variables, a posting has 20 columns
UPDATED = [c.name for c in P.columns if c.name != "id"]


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int
    removed: int
    expired: int  # imported, but already past validThrough: stored and never shown

    def summary(self, source: str) -> str:
        return (
            f"imported {self.added + self.updated + self.unchanged} posting(s) from {source!r}: {self.added} new, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.removed} removed"
            + (f"; {self.expired} already expired (kept, never shown)" if self.expired else "")
        )


@dataclass(frozen=True)
class FilterRow:
    """The columns hard conditions are checked on (the search snapshot holds one per live posting)."""

    id: str
    job_type: str | None
    prefecture: str | None
    remote: bool
    employment_types: str
    salary_min: int | None
    salary_max: int | None
    salary_unit: str | None
    valid_through: datetime | None
    content_hash: str


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for begin in range(0, len(items), size):
        yield items[begin : begin + size]


def _live(now: datetime) -> Any:
    return or_(P.c.valid_through.is_(None), P.c.valid_through > now)


def _row_values(posting: Posting, digest: str, now: datetime) -> dict[str, Any]:
    data = posting.model_dump()
    data["employment_types"] = ",".join(posting.employment_types)
    data["content_hash"] = digest
    data["updated_at"] = now
    return data


def _posting(row: Row[Any]) -> Posting:
    data = dict(row._mapping)
    data["employment_types"] = [c for c in (data.get("employment_types") or "").split(",") if c]
    for key in ("content_hash", "updated_at"):
        data.pop(key, None)
    return Posting.model_validate(data)


class JobRepository:
    """The job tables of an SQL store (SQLite or PostgreSQL)."""

    def __init__(self, store: Any) -> None:
        if not isinstance(store, SQLStore):
            raise TypeError("job postings need an SQL store (SQLite or PostgreSQL)")
        self.store = store
        self.engine = store.engine

    # ----- writes ---------------------------------------------------------------------------------------------------
    def import_feed(
        self, postings: Sequence[Posting], *, source: str, replace: bool = False, now: datetime | None = None
    ) -> ImportResult:
        """Upsert by id, all in one transaction; with `replace`, the source's postings absent from the feed go."""
        now = now or utcnow()
        ids = [p.id for p in postings]
        with self.store.transaction() as tx:
            conn = tx.conn
            existing = self._hashes(conn, ids)
            digests = {p.id: p.content_hash() for p in postings}
            changed = [p for p in postings if existing.get(p.id) != digests[p.id]]
            for batch in _chunks(changed):
                self._upsert(conn, [_row_values(p, digests[p.id], now) for p in batch])
            removed = 0
            if replace:
                keep = set(ids)
                present = conn.execute(select(P.c.id).where(P.c.source == source)).scalars().all()
                gone = [pid for pid in present if pid not in keep]
                for batch in _chunks(gone):
                    removed += conn.execute(delete(P).where(P.c.id.in_(list(batch)))).rowcount
            conn.execute(
                insert(L).values(
                    source=source[:64], action="import", upserted=len(changed), removed=removed, created_at=now
                )
            )
            if conn.dialect.name == "postgresql" and len(changed) > BIG_CHANGE:
                # Fresh statistics, or the planner may scan the whole table for each `id IN (…)` lookup that follows
                # (a re-import of 100,000 postings took 12 minutes before this).
                conn.execute(text("ANALYZE job_postings"))
        added = sum(1 for p in changed if p.id not in existing)
        expired = sum(1 for p in postings if p.valid_through is not None and p.valid_through <= now)
        return ImportResult(added, len(changed) - added, len(postings) - len(changed), removed, expired)

    def remove(
        self, ids: Iterable[str] = (), *, source: str | None = None, expired: bool = False, now: datetime | None = None
    ) -> int:
        """Delete the given postings, or a source's, or every expired one; returns how many went."""
        now = now or utcnow()
        ids = list(ids)
        removed = 0
        with self.store.transaction() as tx:
            conn = tx.conn
            for batch in _chunks(ids):
                removed += conn.execute(delete(P).where(P.c.id.in_(list(batch)))).rowcount
            if source is not None:
                removed += conn.execute(delete(P).where(P.c.source == source)).rowcount
            if expired:
                removed += conn.execute(delete(P).where(P.c.valid_through <= now)).rowcount
            conn.execute(
                insert(L).values(
                    source=(source or "-")[:64], action="remove", upserted=0, removed=removed, created_at=now
                )
            )
        return removed

    @staticmethod
    def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
        # executemany of one cached statement (SQLAlchemy batches it as "insertmanyvalues"): compiling a multi-row
        # VALUES clause per batch cost more than the database's work.
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = dialect_insert(P)
        stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={c: stmt.excluded[c] for c in UPDATED})
        conn.execute(stmt, rows)

    @staticmethod
    def _hashes(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
        if len(ids) > BIG_CHANGE:  # a large feed: one pass over the table beats hundreds of IN lookups
            wanted = set(ids)
            rows = conn.execute(select(P.c.id, P.c.content_hash))
            return {pid: digest for pid, digest in rows if pid in wanted}
        found: dict[str, str] = {}
        for batch in _chunks(ids):
            for pid, digest in conn.execute(select(P.c.id, P.c.content_hash).where(P.c.id.in_(list(batch)))):
                found[pid] = digest
        return found

    # ----- reads ----------------------------------------------------------------------------------------------------
    def version(self) -> int:
        """Moves with every import and removal (servers reload their search snapshot when it does)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(L.c.id))).scalar() or 0)

    def count(self, *, live_only: bool = True, now: datetime | None = None) -> int:
        stmt = select(func.count()).select_from(P)
        if live_only:
            stmt = stmt.where(_live(now or utcnow()))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def snapshot(self, now: datetime | None = None) -> list[FilterRow]:
        """Every live posting's filter columns."""
        cols = [P.c[name] for name in FilterRow.__dataclass_fields__]
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).where(_live(now or utcnow()))).all()
        return [FilterRow(*row) for row in rows]

    def all_hashes(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {pid: digest for pid, digest in conn.execute(select(P.c.id, P.c.content_hash))}

    def get(self, ids: Sequence[str], *, now: datetime | None = None, live_only: bool = True) -> list[Posting]:
        """The postings, in the order of `ids`; expired and removed ones are left out."""
        found: dict[str, Posting] = {}
        with self.engine.connect() as conn:
            for batch in _chunks(list(ids)):
                stmt = select(P).where(P.c.id.in_(list(batch)))
                if live_only:
                    stmt = stmt.where(_live(now or utcnow()))
                for row in conn.execute(stmt):
                    posting = _posting(row)
                    found[posting.id] = posting
        return [found[i] for i in ids if i in found]
