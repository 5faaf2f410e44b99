"""Alembic migrations of the store, shipped inside the package and run in code (no alembic.ini).

To add a revision after changing `bot/store/schema.py`, autogenerate against a database at the current head:

    from sqlalchemy import create_engine
    from alembic import command
    from bot.store.migrations import alembic_config

    with create_engine("sqlite:///data/bot.sqlite3").begin() as conn:
        command.revision(alembic_config(conn), message="what changed", autogenerate=True)

then review the generated file; `tests/store/test_migrations.py` checks it matches the schema on both backends.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Alembic's `context` and `op` are process-wide proxies, so two upgrades in one process (two databases, or
# threads racing at start-up) must not run at the same time. Taken after the database's own migration lock.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for these migrations; env.py runs them on `connection` (and its transaction)."""
    config = Config()
    # ConfigParser interpolates "%": an install path containing one must not break the lookup.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found in " + str(MIGRATIONS_DIR))
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None when never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_connection(connection: Connection, revision: str = "head") -> str:
    """Upgrade inside the caller's transaction (the caller holds the migration lock); returns the new revision."""
    with _ALEMBIC_LOCK:
        command.upgrade(alembic_config(connection), revision)
    return current_revision(connection) or "base"
