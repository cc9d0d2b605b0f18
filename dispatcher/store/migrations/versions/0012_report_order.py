"""results: recipients.report_raw_pull_id, the inbox body of the report applied

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

Reports are processed by several connections at once on PostgreSQL (``inbox.process_pending``), so
two bodies reporting one number may be applied in either order. A recipient now keeps the inbox body
(``raw_pulls.id``, arrival order) of the report it shows, and a report from an earlier body never
replaces it: the latest report wins whichever transaction commits first. Nullable, no default: adding
it rewrites nothing; a recipient reported before it counts as reported by body 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("recipients", sa.Column("report_raw_pull_id", BIG_ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recipients") as batch:
        batch.drop_column("report_raw_pull_id")
