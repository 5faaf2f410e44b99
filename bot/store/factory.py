"""Open the store a DATABASE_URL names, migrated to the current schema."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from bot.store.base import Store
from bot.store.postgres import PostgresStore
from bot.store.sql import DEFAULT_MAX_ATTEMPTS, SQLStore
from bot.store.sqlite import SQLiteStore


def _open(url: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> SQLStore:
    # postgres:// (as some hosting providers spell it) is not a scheme SQLAlchemy knows.
    backend = "postgresql" if url.startswith("postgres://") else make_url(url).get_backend_name()
    if backend == "sqlite":
        return SQLiteStore(url, max_attempts=max_attempts)  # creates the file's parent directory
    if backend == "postgresql":
        return PostgresStore(url, max_attempts=max_attempts)
    raise ValueError(f"unsupported DATABASE_URL scheme {backend!r}: use sqlite:///... or postgresql://...")


def open_store(url: str, *, migrate: bool = True, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Store:
    """The store for `url` (`sqlite:///...`, `postgresql://...`, `postgresql+psycopg://...`).

    With `migrate`, runs `alembic upgrade head` first: a no-op when the schema is current, and safe when several
    processes start at once (they take turns under a database lock). `max_attempts` bounds how many workers in a
    row may be lost while holding one inbox event before it is given up (a live worker's retries are bounded by the
    worker's own budget).
    """
    store = _open(url, max_attempts)
    if migrate:
        try:
            store.upgrade()
        except BaseException:
            store.close()
            raise
    return store


def upgrade(url: str) -> str:
    """`bot db upgrade`: bring the database at `url` to the newest schema; returns the revision it is at."""
    store = _open(url)
    try:
        return store.upgrade()
    finally:
        store.close()
