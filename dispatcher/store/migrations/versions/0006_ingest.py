"""ingest: recipients.chunk_id without a foreign key constraint

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A stored upload writes one recipient per input row in bulk. On PostgreSQL each foreign key of
``recipients`` is a per-row trigger: at 200,000 rows each cost the server ~0.6 s of CPU, as much as
the heap and its four indexes together (BENCHMARKS.md, "Ingest"). ``chunk_id`` is only ever written
with the ids of chunks inserted in the same transaction (the upload, a split), and chunks are deleted
only with their campaign, whose own foreign key (``campaign_id``, ON DELETE CASCADE) removes the
recipients too. SQLite drops a constraint by copying the table (``env.py`` turns foreign keys off
meanwhile, so the copy leaves the reports that reference recipients alone).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recipients") as batch:
        batch.drop_constraint("fk_recipients_chunk_id_chunks", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("recipients") as batch:
        batch.create_foreign_key("fk_recipients_chunk_id_chunks", "chunks", ["chunk_id"], ["id"])
