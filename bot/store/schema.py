"""Table definitions: the single source the store queries against and the migrations are checked against.

A change here needs a new Alembic revision in `bot/store/migrations/versions/`; `tests/store/test_migrations.py`
fails on any drift between the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

# Explicit names so that migrations and both backends agree on constraint names.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Always UTC and always aware: SQLite keeps no offset, so naive values are rejected on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        # SQLite stores the wall time as text: normalise to UTC and drop the offset so text order is time order.
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Row ids: BIGINT on PostgreSQL; SQLite only auto-increments an "INTEGER PRIMARY KEY" (which is 64-bit anyway).
RowId = BigInteger().with_variant(Integer(), "sqlite")
# JSONB on PostgreSQL (compact, indexable later); JSON text on SQLite. None is SQL NULL, not the JSON 'null'.
Json: Any = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# Lengths bound what a client can make us store; ids from LINE are well below them.
ID_LEN = 128

turns = Table(
    "turns",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("conversation_id", String(ID_LEN), nullable=False),
    Column("role", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("answer", Json, nullable=True),
    Column("channel_message_id", String(ID_LEN), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # `consultant`: a career consultant's reply written in the operators' console (bot.handoff).
    CheckConstraint("role IN ('user', 'bot', 'consultant')", name="role"),
    # (conversation_id, id) serves recent_turns, prune_turns and deletes; unsend scans one bounded history.
    Index(None, "conversation_id", "id"),
    # A channel's message is stored once however often it is retried or redelivered (NULLs, the bot's turns and
    # web messages without an id, never collide).
    UniqueConstraint("conversation_id", "channel_message_id"),
)

conversation_states = Table(
    "conversation_states",
    metadata,
    Column("conversation_id", String(ID_LEN), primary_key=True),
    Column("state", Json, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# No foreign key to turns: feedback outlives history pruning so that helpfulness stats keep counting;
# delete_conversation removes it explicitly.
feedback = Table(
    "feedback",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("conversation_id", String(ID_LEN), nullable=False),
    Column("turn_id", BigInteger, nullable=False),
    Column("helpful", Boolean, nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "conversation_id"),
)

bindings = Table(
    "conversation_bindings",
    metadata,
    Column("conversation_id", String(ID_LEN), primary_key=True),
    Column("owner_token_hash", String(ID_LEN), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

inbox = Table(
    "inbox_events",
    metadata,
    Column("pk", RowId, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("event_id", String(ID_LEN), nullable=False),
    Column("conversation_key", String(ID_LEN), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("claimed_by", String(ID_LEN), nullable=True),
    Column("claimed_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("accepted_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    CheckConstraint("status IN ('pending', 'claimed', 'done', 'failed')", name="status"),
    # The durable dedupe of redeliveries.
    UniqueConstraint("source", "event_id"),
    # Claim: pending rows, and claimed rows by age (stale recovery).
    Index(None, "status", "claimed_at"),
    # Claim's per-conversation checks and delete_user_data.
    Index(None, "conversation_key", "pk"),
)

sent_keys = Table(
    "sent_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("sent_at", UTCDateTime(), nullable=False),
)

# ----- handoff to a consultant and the operators' console (bot.handoff, bot.console) --------------------------------

# One row per conversation that was queued for a consultant; reopened in place when queued again. Removed with the
# conversation (delete_user_data), so a user's deletion takes it off the console too.
handoffs = Table(
    "handoffs",
    metadata,
    Column("conversation_id", String(ID_LEN), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("topic", String(64), nullable=True),
    Column("summary", Text, nullable=False),
    Column("steps_done", Integer, nullable=False),
    Column("escalation", String(32), nullable=True),
    Column("assigned_to", String(64), nullable=True),
    Column("note", Text, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("unread", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime(), nullable=True),
    CheckConstraint("status IN ('waiting', 'active', 'closed')", name="status"),
    # The queue's tabs (waiting, mine, closed), newest change first; the live-update probe reads max(updated_at).
    Index(None, "status", "updated_at"),
    Index(None, "assigned_to", "status"),
    Index(None, "updated_at"),
)

operators = Table(
    "operators",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_login_at", UTCDateTime(), nullable=True),
    CheckConstraint("role IN ('consultant', 'admin')", name="role"),
    UniqueConstraint("username"),
)

# Console sessions live in the database so every worker knows them; only the token's hash is stored.
operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("operator_id", BigInteger, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index(None, "operator_id"),
)

# Who did what in the console: logins (and failures), every opening of a conversation, replies, hand-backs, closes,
# exports. No message text. A user's deletion replaces their conversation id with "forgotten".
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("operator", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("conversation_id", String(ID_LEN), nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "conversation_id"),
    Index(None, "created_at"),
)

# One row per answered message, without its text: the insights' per-day counts outlive history pruning.
message_log = Table(
    "message_log",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("conversation_id", String(ID_LEN), nullable=False),
    # The user's stored message (pruned with the history): the insights read unsure messages' text through it.
    Column("user_turn_id", BigInteger, nullable=True),
    Column("channel", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("topic", String(64), nullable=True),
    Column("escalation", String(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "created_at"),
    Index(None, "conversation_id"),
)

# Job postings imported by operators (`bot jobs import`): employers' offers, no personal data. The semantic index is
# a Chroma collection of its own (bot.jobs.index); these rows are the truth it is checked against.
job_postings = Table(
    "job_postings",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("source_label", String(100), nullable=False),
    Column("sample", Boolean, nullable=False),
    Column("title", String(200), nullable=False),
    Column("company", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("job_type", String(32), nullable=True),
    Column("prefecture", String(8), nullable=True),
    Column("locality", String(200), nullable=False),
    Column("remote", Boolean, nullable=False),
    Column("employment_types", String(200), nullable=False),  # schema.org codes, comma-separated
    Column("salary_min", BigInteger, nullable=True),
    Column("salary_max", BigInteger, nullable=True),
    Column("salary_unit", String(8), nullable=True),
    Column("url", String(1000), nullable=False),
    Column("date_posted", UTCDateTime(), nullable=True),
    Column("valid_through", UTCDateTime(), nullable=True),
    Column("content_hash", String(64), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "source"),
    Index(None, "valid_through"),
)

# One row per import or removal: its id is the catalogue's version (servers reload their search snapshot when it
# moves), and operators see what changed when.
job_imports = Table(
    "job_imports",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("upserted", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
