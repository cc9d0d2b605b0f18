"""failover: evidence per account that sent: chunks.account, unknown_requests

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

``chunks.account``: the account a chunk was packed for (its vendor's limits and separators); after a
failover a worker never sends a personalised chunk packed for another account, the beat re-plans it.
Back-filled for campaigns that never moved (their account is the one); left null for those that did.

``unknown_requests``: for a recipient an operator sends again from ``unknown``, the request whose outcome
nobody knows: the account it went out on, its chunk and when, and whether the beat sent it again by
itself (the account's ``settle_unknown_after``) rather than a person. A report of the number on that account,
or entinfo's "already sent", is weighed against that account, not the campaign's current one. Back-filled
for the chunks re-queued from unknown before this, on the account their recipients were left on.
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
    op.add_column("chunks", sa.Column("account", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE chunks SET account = (SELECT campaigns.account FROM campaigns"
        " WHERE campaigns.id = chunks.campaign_id AND campaigns.routing IS NULL) WHERE account IS NULL"
    )
    op.create_table(
        "unknown_requests",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("recipient_id", BIG_ID, nullable=False),
        sa.Column("campaign_id", BIG_ID, nullable=False),
        sa.Column("chunk_id", BIG_ID, nullable=False),
        sa.Column("ref", sa.String(length=18), nullable=False),
        sa.Column("mobile", sa.String(length=20), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("sent_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("automatic", sa.Boolean(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unknown_requests")),
    )
    op.create_index(
        op.f("ix_unknown_requests_account_mobile"), "unknown_requests", ["account", "mobile"], unique=False
    )
    op.create_index(
        op.f("ix_unknown_requests_recipient_id"), "unknown_requests", ["recipient_id"], unique=False
    )
    # What was re-queued from unknown before: its first request's account is the one its recipients
    # were left on, or the campaign's; when, from the chunk's attempts (or its last change).
    op.execute(
        "INSERT INTO unknown_requests (recipient_id, campaign_id, chunk_id, ref, mobile, account, sent_from,"
        " sent_until)"
        " SELECT r.id, r.campaign_id, c.id, c.ref, r.mobile, COALESCE(r.account, k.account),"
        " COALESCE((SELECT MIN(a.started_at) FROM attempts a WHERE a.chunk_id = c.id), c.created_at),"
        " COALESCE((SELECT MAX(a.started_at) FROM attempts a WHERE a.chunk_id = c.id), c.updated_at)"
        " FROM recipients r JOIN chunks c ON c.id = r.chunk_id JOIN campaigns k ON k.id = r.campaign_id"
        " WHERE c.requeued_from_unknown AND r.mobile IS NOT NULL"
        " AND r.state NOT IN ('rejected', 'cancelled', 'failed', 'planned')"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_unknown_requests_recipient_id"), table_name="unknown_requests")
    op.drop_index(op.f("ix_unknown_requests_account_mobile"), table_name="unknown_requests")
    op.drop_table("unknown_requests")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("account")
