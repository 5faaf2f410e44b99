"""SQLite: the default, embedded store. Several processes may share the file (WAL + busy timeout).

Deletion that deletes: `secure_delete` overwrites deleted content in the database pages, and after a user's data is
deleted the WAL is checkpointed and truncated, so their text is in neither file (the WAL holds the old page images
until a checkpoint otherwise). The cost is measured in bench/store_bench.py.

Writes are serialised by SQLite itself; every writing transaction starts with `BEGIN IMMEDIATE` so it holds the
write lock from its first read. A deferred transaction that reads and then writes can fail with SQLITE_BUSY the
moment another process commits in between, and the busy timeout does not help with that case.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import URL, make_url

from bot.store.sql import DEFAULT_MAX_ATTEMPTS, SQLStore, json_dumps

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "bot_sqlite_begin"


def sqlite_path(url: str | URL) -> Path:
    """The database file of a `sqlite:///...` URL; in-memory databases are refused (one per connection)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError("the store needs an SQLite file (sqlite:///path/to/file.sqlite3), not an in-memory database")
    return Path(database)


class SQLiteStore(SQLStore):
    backend = "sqlite"

    def __init__(self, url: str, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            URL.create("sqlite+pysqlite", database=str(path)),
            # Bound parameters carry message text; keep them out of exception messages that may get logged.
            hide_parameters=True,
            json_serializer=json_dumps,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
        super().__init__(engine, max_attempts=max_attempts)
        self.path = path
        self._write_lock = threading.Lock()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        # This process's writers queue on a Python lock, which hands over the moment it is released. Waiting in
        # SQLite instead means its busy handler, which sleeps in growing steps up to 100 ms between tries: under a
        # webhook burst that, not the writes, made the acknowledgement slow. Other processes on the same file still
        # wait through the busy timeout.
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                yield conn

    def delete_conversation(self, conversation_id: str) -> int:
        removed = super().delete_conversation(conversation_id)
        self.checkpoint()
        return removed

    def delete_user_data(self, conversation_id: str, *, conversation_key: str | None = None) -> int:
        removed = super().delete_user_data(conversation_id, conversation_key=conversation_key)
        self.checkpoint()
        return removed

    def inbox_forget(self, conversation_key: str) -> int:
        forgotten = super().inbox_forget(conversation_key)
        self.checkpoint()
        return forgotten

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes; False when a reader kept it from finishing
        (the next deletion or SQLite's automatic checkpoint finishes the job)."""
        with self.engine.connect() as conn:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        if busy:
            log.warning("sqlite: the WAL checkpoint after a deletion was blocked by a reader; it completes later")
        return not busy

    # _lock_candidates: nothing to add, BEGIN IMMEDIATE already makes the whole claim exclusive.
    # _migration_lock: likewise; a second process waits on the write lock, then finds the schema at head.


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _on_begin): the sqlite3 module's implicit transactions would
    # neither cover SELECTs nor DDL, and cannot take the write lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Deleted rows are overwritten with zeros, not just unlinked (a per-connection setting).
        cursor.execute("PRAGMA secure_delete = ON")
        _ensure_wal(cursor)
        # FULL (fsync on every commit) because an accepted webhook event must survive a power cut, not only a crash.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _ensure_wal(cursor: Any) -> None:
    """WAL: readers never block the writer, and other processes can use the file at the same time.

    The mode is stored in the file, so only the first connection to a new file switches it. Switching needs an
    exclusive lock and SQLite answers "database is locked" at once, without the busy timeout, when processes
    open a new file together: retry until one of them has done it.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    mode = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    while mode != "wal":
        try:
            mode = str(cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        if mode != "wal":
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError(f"could not switch the database to WAL mode (it stays {mode!r})")
            time.sleep(0.01)


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")
