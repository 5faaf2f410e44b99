"""Handoff to a career consultant and the operators' console: handoffs, operators, sessions, audit log, message log;
turns may be written by a consultant.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Self-contained (no imports from bot.store.schema), like the revisions before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_LEN = 128


def _row_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_constraint("ck_turns_role", type_="check")
        batch.alter_column("role", existing_type=sa.String(length=8), type_=sa.String(length=16))
        batch.create_check_constraint("ck_turns_role", "role IN ('user', 'bot', 'consultant')")

    op.create_table(
        "handoffs",
        sa.Column("conversation_id", sa.String(length=ID_LEN), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("escalation", sa.String(length=32), nullable=True),
        sa.Column("assigned_to", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("unread", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("closed_at", _utc(), nullable=True),
        sa.CheckConstraint("status IN ('waiting', 'active', 'closed')", name="ck_handoffs_status"),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_handoffs"),
    )
    op.create_index("ix_handoffs_status_updated_at", "handoffs", ["status", "updated_at"])
    op.create_index("ix_handoffs_assigned_to_status", "handoffs", ["assigned_to", "status"])
    op.create_index("ix_handoffs_updated_at", "handoffs", ["updated_at"])

    op.create_table(
        "operators",
        sa.Column("id", _row_id(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("last_login_at", _utc(), nullable=True),
        sa.CheckConstraint("role IN ('consultant', 'admin')", name="ck_operators_role"),
        sa.PrimaryKeyConstraint("id", name="pk_operators"),
        sa.UniqueConstraint("username", name="uq_operators_username"),
    )

    op.create_table(
        "operator_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_operator_sessions"),
    )
    op.create_index("ix_operator_sessions_operator_id", "operator_sessions", ["operator_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", _row_id(), autoincrement=True, nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=ID_LEN), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_conversation_id", "audit_log", ["conversation_id"])
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])

    op.create_table(
        "message_log",
        sa.Column("id", _row_id(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=ID_LEN), nullable=False),
        sa.Column("user_turn_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column("escalation", sa.String(length=32), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_log"),
    )
    op.create_index("ix_message_log_created_at", "message_log", ["created_at"])
    op.create_index("ix_message_log_conversation_id", "message_log", ["conversation_id"])


def downgrade() -> None:
    for table in ("message_log", "audit_log", "operator_sessions", "operators", "handoffs"):
        op.drop_table(table)
    op.execute(sa.text("DELETE FROM turns WHERE role = 'consultant'"))
    with op.batch_alter_table("turns") as batch:
        batch.drop_constraint("ck_turns_role", type_="check")
        batch.alter_column("role", existing_type=sa.String(length=16), type_=sa.String(length=8))
        batch.create_check_constraint("ck_turns_role", "role IN ('user', 'bot')")
