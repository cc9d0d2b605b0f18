"""the re-queue sweep's own clock: ``chunks.requeued_at``; the store's identity: ``store_identity``

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08

The beat's sweep hands a queued chunk to the broker again when nobody touched it for a while; it used to
stamp ``updated_at`` to say so, which also reset the age of the oldest queued request
(``dispatcher_queue_oldest_age_seconds``), so a stuck queue never looked older than the sweep's period.
It stamps ``requeued_at`` now; ``updated_at`` keeps saying when the chunk was queued. Nullable: nothing
is rewritten.

``store_identity`` holds one random id, written here: heartbeats name their store by it
(``operations.fingerprint``), so that two processes share a store when they share this database, whatever
their URLs' text.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chunks", sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True))
    identity = op.create_table(
        "store_identity",
        sa.Column("id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_store_identity"),
    )
    op.bulk_insert(identity, [{"id": secrets.token_hex(16)}])


def downgrade() -> None:
    op.drop_table("store_identity")
    # SQLite drops a column in place (3.35+): copying chunks would cascade to its dependants.
    op.execute("ALTER TABLE chunks DROP COLUMN requeued_at")
