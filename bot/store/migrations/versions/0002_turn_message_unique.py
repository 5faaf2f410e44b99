"""A channel message is stored once: unique (conversation_id, channel_message_id) on turns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Before this revision every retried or redelivered attempt stored the user's message again; those extra copies are
removed first (the oldest copy stays, with the answer that followed it), or the constraint could not be created.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM turns WHERE channel_message_id IS NOT NULL AND id NOT IN ("
            " SELECT MIN(id) FROM turns WHERE channel_message_id IS NOT NULL"
            " GROUP BY conversation_id, channel_message_id)"
        )
    )
    with op.batch_alter_table("turns") as batch:
        batch.create_unique_constraint(
            "uq_turns_conversation_id_channel_message_id", ["conversation_id", "channel_message_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_constraint("uq_turns_conversation_id_channel_message_id", type_="unique")
