"""Initial schema: turns, conversation state, feedback, web bindings, channel inbox, sent-answer ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Self-contained on purpose (no imports from bot.store.schema): a migration must keep describing the schema of its
time after the models move on. Timestamps are stored in UTC (timestamptz on PostgreSQL; UTC text on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_LEN = 128


def _row_id() -> sa.types.TypeEngine[int]:
    # BIGINT on PostgreSQL; SQLite auto-increments only an "INTEGER PRIMARY KEY" (64-bit anyway).
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "turns",
        sa.Column("id", _row_id(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=ID_LEN), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("answer", _json(), nullable=True),
        sa.Column("channel_message_id", sa.String(length=ID_LEN), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.CheckConstraint("role IN ('user', 'bot')", name="ck_turns_role"),
        sa.PrimaryKeyConstraint("id", name="pk_turns"),
    )
    op.create_index("ix_turns_conversation_id_id", "turns", ["conversation_id", "id"])

    op.create_table(
        "conversation_states",
        sa.Column("conversation_id", sa.String(length=ID_LEN), nullable=False),
        sa.Column("state", _json(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_conversation_states"),
    )

    op.create_table(
        "feedback",
        sa.Column("id", _row_id(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=ID_LEN), nullable=False),
        sa.Column("turn_id", sa.BigInteger(), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_conversation_id", "feedback", ["conversation_id"])

    op.create_table(
        "conversation_bindings",
        sa.Column("conversation_id", sa.String(length=ID_LEN), nullable=False),
        sa.Column("owner_token_hash", sa.String(length=ID_LEN), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_conversation_bindings"),
    )

    op.create_table(
        "inbox_events",
        sa.Column("pk", _row_id(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=ID_LEN), nullable=False),
        sa.Column("conversation_key", sa.String(length=ID_LEN), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=ID_LEN), nullable=True),
        sa.Column("claimed_at", _utc(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("accepted_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'claimed', 'done', 'failed')", name="ck_inbox_events_status"),
        sa.PrimaryKeyConstraint("pk", name="pk_inbox_events"),
        sa.UniqueConstraint("source", "event_id", name="uq_inbox_events_source_event_id"),
    )
    op.create_index("ix_inbox_events_status_claimed_at", "inbox_events", ["status", "claimed_at"])
    op.create_index("ix_inbox_events_conversation_key_pk", "inbox_events", ["conversation_key", "pk"])

    op.create_table(
        "sent_keys",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("sent_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_sent_keys"),
    )


def downgrade() -> None:
    # Indexes go with their tables.
    for table in ("sent_keys", "inbox_events", "conversation_bindings", "feedback", "conversation_states", "turns"):
        op.drop_table(table)
