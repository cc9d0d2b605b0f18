"""ingest: recipients.campaign_id without a foreign key constraint

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

The last foreign key of ``recipients`` goes the way of ``chunk_id``'s (0006): on PostgreSQL it is a
per-row trigger that doubled the store's part of a stored upload (0.75 -> 1.40 s per 200,000
recipients, BENCHMARKS.md, "Ingest, fifth round"). ``campaign_id`` is only ever written with the id of
the campaign created or read in the same transaction, and no code deletes a campaign (its ``ON DELETE
CASCADE`` never ran). SQLite drops a constraint by copying the table (``env.py`` turns foreign keys off
meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recipients") as batch:
        batch.drop_constraint("fk_recipients_campaign_id_campaigns", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("recipients") as batch:
        batch.create_foreign_key(
            "fk_recipients_campaign_id_campaigns", "campaigns", ["campaign_id"], ["id"], ondelete="CASCADE"
        )
