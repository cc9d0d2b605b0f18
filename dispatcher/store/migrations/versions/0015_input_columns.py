"""input columns: each input row's own cells, and the list's header names, for the export

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

The export gives back the list's own columns (姓名, 城市 …) after the dispatcher's. ``recipient_cells``
holds one JSON array per input row, keyed by (campaign, row number) and written in one bulk pass after
the recipients; ``uploads.headers`` names the columns. Campaigns created before have neither: their
export has the dispatcher's columns only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("uploads", sa.Column("headers", sa.JSON(), nullable=True))
    op.create_table(
        "recipient_cells",
        sa.Column("campaign_id", BIG_ID, nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("cells", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "row_number", name="pk_recipient_cells"),
    )


def downgrade() -> None:
    op.drop_table("recipient_cells")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("headers")
