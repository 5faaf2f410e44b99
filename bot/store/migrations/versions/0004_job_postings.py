"""Job postings imported by operators (issue 15), and the log of imports whose id versions the catalogue.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Self-contained (no imports from bot.store.schema), like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_LEN = 128


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_postings",
        sa.Column("id", sa.String(length=ID_LEN), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_label", sa.String(length=100), nullable=False),
        sa.Column("sample", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("job_type", sa.String(length=32), nullable=True),
        sa.Column("prefecture", sa.String(length=8), nullable=True),
        sa.Column("locality", sa.String(length=200), nullable=False),
        sa.Column("remote", sa.Boolean(), nullable=False),
        sa.Column("employment_types", sa.String(length=200), nullable=False),
        sa.Column("salary_min", sa.BigInteger(), nullable=True),
        sa.Column("salary_max", sa.BigInteger(), nullable=True),
        sa.Column("salary_unit", sa.String(length=8), nullable=True),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("date_posted", _utc(), nullable=True),
        sa.Column("valid_through", _utc(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_postings"),
    )
    op.create_index("ix_job_postings_source", "job_postings", ["source"])
    op.create_index("ix_job_postings_valid_through", "job_postings", ["valid_through"])
    op.create_table(
        "job_imports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("upserted", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_imports"),
    )


def downgrade() -> None:
    op.drop_table("job_imports")
    op.drop_index("ix_job_postings_valid_through", table_name="job_postings")
    op.drop_index("ix_job_postings_source", table_name="job_postings")
    op.drop_table("job_postings")
