"""a campaign's figures from indexes alone: segments beside the state, failures by code

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08

A campaign's page and ``/api/campaigns/N`` add up the segments sent and count the failures by code: at a
million recipients each was a pass over the table (over a second). ``ix_recipients_campaign_id_state``
becomes ``(campaign_id, state, segments)`` (the same index, one small column wider: the sums by state
come from it alone), and a partial index holds the failed and undelivered recipients' codes (only those
rows: a send or a delivery report writes nothing more to it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAILED = sa.text("state IN ('failed', 'undelivered')")


def upgrade() -> None:
    op.create_index(
        op.f("ix_recipients_campaign_id_state_segments"), "recipients", ["campaign_id", "state", "segments"]
    )
    op.drop_index(op.f("ix_recipients_campaign_id_state"), table_name="recipients")
    op.create_index(
        "ix_recipients_failures",
        "recipients",
        ["campaign_id", "state", "report_status", "vendor_code", "error_class"],
        sqlite_where=FAILED,
        postgresql_where=FAILED,
    )


def downgrade() -> None:
    op.drop_index("ix_recipients_failures", table_name="recipients")
    op.create_index(op.f("ix_recipients_campaign_id_state"), "recipients", ["campaign_id", "state"])
    op.drop_index(op.f("ix_recipients_campaign_id_state_segments"), table_name="recipients")
