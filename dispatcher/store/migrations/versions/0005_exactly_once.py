"""exactly once: atomic split numbers, chunks re-queued from unknown

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``campaigns.next_seq``: the seq the next split child takes (set past the planned chunks' seqs here).
``chunks.requeued_from_unknown``: an operator re-sent it from ``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD/DROP COLUMN, never a batch copy: on SQLite, copying a table means dropping the old one, which
# with foreign keys on deletes its chunks and recipients (ON DELETE CASCADE). Constant string defaults
# keep SQLite's ALTER TABLE ADD COLUMN possible; DROP COLUMN needs SQLite 3.35, as RETURNING does.


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("next_seq", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "chunks", sa.Column("requeued_from_unknown", sa.Boolean(), server_default="0", nullable=False)
    )
    op.execute(
        "UPDATE campaigns SET next_seq = "
        "(SELECT COALESCE(MAX(chunks.seq), -1) + 1 FROM chunks WHERE chunks.campaign_id = campaigns.id)"
    )


def downgrade() -> None:
    op.drop_column("chunks", "requeued_from_unknown")
    op.drop_column("campaigns", "next_seq")
