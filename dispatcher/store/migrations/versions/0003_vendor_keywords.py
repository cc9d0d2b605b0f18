"""vendor keywords

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-30

The forbidden words each account's vendor lists (``dispatcher keywords pull``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit ids on PostgreSQL; SQLite auto-increments only a column declared exactly INTEGER.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vendor_keywords",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("word", sa.String(length=200), nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vendor_keywords")),
        sa.UniqueConstraint("account", "word", name=op.f("uq_vendor_keywords_account_word")),
    )


def downgrade() -> None:
    op.drop_table("vendor_keywords")
