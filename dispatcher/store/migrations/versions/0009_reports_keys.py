"""reports: recipient_id and raw_pull_id without foreign key constraints

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Reconciliation writes every pulled report in bulk (``INSERT ... SELECT`` from its stage). On PostgreSQL
each foreign key of ``reports`` is a per-row trigger: at 10,000 reports a batch, the two took 0.53 s of
the insert's 0.75 s (``EXPLAIN ANALYZE``, BENCHMARKS.md, "Reconcile"). Both columns are only ever
written with ids read in the same transaction (the recipient a report matched, the raw body it was
parsed from), and neither recipients nor raw bodies are deleted by the dispatcher. SQLite drops a
constraint by copying the table (``env.py`` turns foreign keys off meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_constraint("fk_reports_recipient_id_recipients", type_="foreignkey")
        batch.drop_constraint("fk_reports_raw_pull_id_raw_pulls", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.create_foreign_key(
            "fk_reports_recipient_id_recipients", "recipients", ["recipient_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key("fk_reports_raw_pull_id_raw_pulls", "raw_pulls", ["raw_pull_id"], ["id"])
