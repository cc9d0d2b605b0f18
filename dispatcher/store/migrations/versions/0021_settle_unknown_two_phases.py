"""unknowns that settle themselves, in two phases; duplicates a re-send caused

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08

``chunks.settle_marked_at``: when the beat first found an unknown chunk with nothing saying it was taken
(``settle_unknown_after``); it is sent again only after a report drain that began later
(``account_drains``: when each account's last complete drain of its reports or replies began).
``recipients.sent_twice``: re-sent from ``unknown``, and reports came for both requests. Nullable or
defaulted columns and a new table: nothing is rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chunks", sa.Column("settle_marked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("recipients", sa.Column("sent_twice", sa.Boolean(), server_default="0", nullable=False))
    op.create_index(
        "ix_recipients_sent_twice",
        "recipients",
        ["campaign_id", "sent_twice"],
        sqlite_where=sa.text("sent_twice = 1"),
        postgresql_where=sa.text("sent_twice"),
    )
    op.create_table(
        "account_drains",
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "kind", name="pk_account_drains"),
    )


def downgrade() -> None:
    op.drop_table("account_drains")
    op.drop_index("ix_recipients_sent_twice", table_name="recipients")
    # SQLite drops a column in place (3.35+): copying the table would cascade to its dependants.
    op.execute("ALTER TABLE recipients DROP COLUMN sent_twice")
    op.execute("ALTER TABLE chunks DROP COLUMN settle_marked_at")
