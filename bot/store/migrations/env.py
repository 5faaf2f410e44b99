"""Alembic environment: runs on the connection handed over by bot.store (see alembic_config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bot.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run the store's migrations through bot.store (open_store, upgrade or `bot db upgrade`)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
# The caller's transaction (with its lock) is already open, so this does not commit by itself.
with context.begin_transaction():
    context.run_migrations()
