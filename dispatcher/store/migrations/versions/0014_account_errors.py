"""results: account_errors, an account's current error on its report and reply pulls

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

A pull refused for an account error (wrong password, IP not bound, account frozen) backs the account's
pulls off (minutes, growing) until a pull succeeds or its configuration changes; every page shows the
error until then. One row per account in error, none otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_errors",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("meaning", sa.Text(), nullable=False),
        sa.Column("meaning_en", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_account_errors")),
    )


def downgrade() -> None:
    op.drop_table("account_errors")
