"""exactly once: atomic split numbers, chunks re-queued from unknown

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

``campaigns.next_seq``: the seq the next split child takes (set past the planned chunks' seqs here).
``chunks.requeued_from_unknown``: an operator re-sent it from ``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("next_seq", sa.Integer(), server_default=sa.text("0"), nullable=False))
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(
            sa.Column("requeued_from_unknown", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(
        "UPDATE campaigns SET next_seq = "
        "(SELECT COALESCE(MAX(chunks.seq), -1) + 1 FROM chunks WHERE chunks.campaign_id = campaigns.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("requeued_from_unknown")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("next_seq")
