"""input columns: the upload keeps the list itself, its header row and column names, for the export

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

The export gives back the list's own columns (姓名, 城市 …) after the dispatcher's: it reads them from
the list the campaign was made from, kept in ``uploads.content`` (one value per upload, written once at
create), below ``uploads.header_row``, named by ``uploads.headers``. Campaigns created before have none:
their export has the dispatcher's columns only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("uploads", sa.Column("content", sa.LargeBinary(), nullable=True))
    op.add_column("uploads", sa.Column("header_row", sa.Integer(), nullable=True))
    op.add_column("uploads", sa.Column("headers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("headers")
        batch.drop_column("header_row")
        batch.drop_column("content")
