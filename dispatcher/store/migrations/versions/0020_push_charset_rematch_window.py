"""raw_pulls: the charset a pushed form came in; the re-match of unmatched reports bounded in time

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08

``raw_pulls.charset``: the charset a pushed body's bytes and its form's %-escapes were in (its
Content-Type's), read again when the body is parsed; null is UTF-8 (pulls, older pushes). A GBK form
stored without it lost every Chinese reply text, opt-outs included. ``ix_raw_pulls_received_at`` finds
the first body of the re-match window; ``ix_reports_unmatched_raw`` the unmatched reports of the bodies
from there on (partial, as ``ix_reports_unmatched``: nearly every report is written matched). A
nullable column and new indexes: nothing is rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNMATCHED = sa.text("recipient_id IS NULL")


def upgrade() -> None:
    op.add_column("raw_pulls", sa.Column("charset", sa.String(32), nullable=True))
    op.create_index(op.f("ix_raw_pulls_received_at"), "raw_pulls", ["received_at"])
    op.create_index(
        "ix_reports_unmatched_raw",
        "reports",
        ["raw_pull_id"],
        postgresql_where=_UNMATCHED,
        sqlite_where=_UNMATCHED,
    )


def downgrade() -> None:
    op.drop_index("ix_reports_unmatched_raw", table_name="reports")
    op.drop_index(op.f("ix_raw_pulls_received_at"), table_name="raw_pulls")
    with op.batch_alter_table("raw_pulls") as batch:
        batch.drop_column("charset")
