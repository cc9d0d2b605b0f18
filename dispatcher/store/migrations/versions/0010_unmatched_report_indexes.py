"""reports: the batch id, ref and unmatched indexes cover only unmatched reports

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Every query of ``reports`` that is not by primary key or raw body asks for unmatched reports
(``recipient_id IS NULL``): the next reconcile's retry, the orphans list, a campaign's orphan count.
Nearly every report is written already matched (``rows.store_staged``), so full indexes on
``(batch_id, mobile)``, ``ref`` and ``recipient_id`` cost three index entries per report that no query
reads. Partial, they hold the unmatched reports only; ``recipient_id``'s becomes one on ``id`` (the
unmatched in id order, as the retry and the orphans list read them). Measured: the reports' insert
~38 -> ~23 ms per 10,000 reports on PostgreSQL at 1,000,000 (BENCHMARKS.md, "Reconcile, third round").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNMATCHED = sa.text("recipient_id IS NULL")


def upgrade() -> None:
    op.drop_index(op.f("ix_reports_batch_id_mobile"), table_name="reports")
    op.drop_index(op.f("ix_reports_ref"), table_name="reports")
    op.drop_index(op.f("ix_reports_recipient_id"), table_name="reports")
    for name, columns in (
        (op.f("ix_reports_batch_id_mobile"), ["batch_id", "mobile"]),
        (op.f("ix_reports_ref"), ["ref"]),
        ("ix_reports_unmatched", ["id"]),
    ):
        op.create_index(name, "reports", columns, postgresql_where=_UNMATCHED, sqlite_where=_UNMATCHED)


def downgrade() -> None:
    op.drop_index("ix_reports_unmatched", table_name="reports")
    op.drop_index(op.f("ix_reports_ref"), table_name="reports")
    op.drop_index(op.f("ix_reports_batch_id_mobile"), table_name="reports")
    op.create_index(op.f("ix_reports_recipient_id"), "reports", ["recipient_id"])
    op.create_index(op.f("ix_reports_ref"), "reports", ["ref"])
    op.create_index(op.f("ix_reports_batch_id_mobile"), "reports", ["batch_id", "mobile"])
