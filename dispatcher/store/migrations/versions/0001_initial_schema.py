"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Every table of dispatcher.store.models; tests/store check that this matches the models exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit ids on PostgreSQL; SQLite auto-increments only a column declared exactly INTEGER.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=16), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_start", sa.SmallInteger(), nullable=False),
        sa.Column("window_end", sa.SmallInteger(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "state IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')",
            name=op.f("ck_campaigns_state"),
        ),
        sa.CheckConstraint(
            "window_start >= 0 AND window_start < window_end AND window_end <= 1440",
            name=op.f("ck_campaigns_window"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(op.f("ix_campaigns_state_start_at"), "campaigns", ["state", "start_at"])

    op.create_table(
        "optouts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("mobile", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_optouts")),
        sa.UniqueConstraint("mobile", name=op.f("uq_optouts_mobile")),
    )
    op.create_table(
        "raw_pulls",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parsed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('reports', 'replies')", name=op.f("ck_raw_pulls_kind")),
        sa.CheckConstraint("source IN ('pull', 'push')", name=op.f("ck_raw_pulls_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_pulls")),
    )
    op.create_index(op.f("ix_raw_pulls_parsed_at"), "raw_pulls", ["parsed_at"])

    op.create_table(
        "users",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'sender', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", BIG_ID, nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_audit_log_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_campaign_id_at"), "audit_log", ["campaign_id", "at"])

    op.create_table(
        "chunks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", BIG_ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=18), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("batch_id", sa.String(length=32), nullable=True),
        sa.Column("error_class", sa.String(length=16), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("parent_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('planned', 'queued', 'sending', 'accepted', 'failed', 'unknown')",
            name=op.f("ck_chunks_state"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_chunks_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["chunks.id"], name=op.f("fk_chunks_parent_id_chunks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chunks")),
        sa.UniqueConstraint("campaign_id", "seq", name=op.f("uq_chunks_campaign_id_seq")),
        sa.UniqueConstraint("ref", name=op.f("uq_chunks_ref")),
    )
    op.create_index(op.f("ix_chunks_batch_id"), "chunks", ["batch_id"])
    op.create_index(op.f("ix_chunks_campaign_id_state"), "chunks", ["campaign_id", "state"])
    op.create_index(op.f("ix_chunks_parent_id"), "chunks", ["parent_id"])
    op.create_index(op.f("ix_chunks_state_lease_until"), "chunks", ["state", "lease_until"])

    op.create_table(
        "replies",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("mobile", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("ref", sa.String(length=60), nullable=True),
        sa.Column("campaign_id", BIG_ID, nullable=True),
        sa.Column("is_optout", sa.Boolean(), nullable=False),
        sa.Column("raw_pull_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_replies_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["raw_pull_id"], ["raw_pulls.id"], name=op.f("fk_replies_raw_pull_id_raw_pulls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replies")),
    )
    op.create_index(op.f("ix_replies_campaign_id"), "replies", ["campaign_id"])
    op.create_index(op.f("ix_replies_mobile"), "replies", ["mobile"])

    op.create_table(
        "uploads",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", BIG_ID, nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sheet", sa.String(length=255), nullable=True),
        sa.Column("phone_column", sa.String(length=255), nullable=True),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_accepted", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_uploads_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_campaign_id"), "uploads", ["campaign_id"])
    op.create_index(op.f("ix_uploads_sha256"), "uploads", ["sha256"])

    op.create_table(
        "attempts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("chunk_id", BIG_ID, nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request", sa.JSON(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("error_class", sa.String(length=16), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("url_used", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["chunk_id"], ["chunks.id"], name=op.f("fk_attempts_chunk_id_chunks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    op.create_index(op.f("ix_attempts_chunk_id"), "attempts", ["chunk_id"])

    op.create_table(
        "recipients",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", BIG_ID, nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("mobile", sa.String(length=20), nullable=True),
        sa.Column("raw_value", sa.String(length=255), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("segments", sa.SmallInteger(), nullable=False),
        sa.Column("reject_reason", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("chunk_id", BIG_ID, nullable=True),
        sa.Column("batch_id", sa.String(length=32), nullable=True),
        sa.Column("vendor_code", sa.String(length=32), nullable=True),
        sa.Column("report_status", sa.String(length=32), nullable=True),
        sa.Column("error_class", sa.String(length=16), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('rejected', 'planned', 'queued', 'sending', 'accepted', 'failed', 'unknown', 'delivered', 'undelivered', 'expired')",
            name=op.f("ck_recipients_state"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_recipients_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["chunk_id"], ["chunks.id"], name=op.f("fk_recipients_chunk_id_chunks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipients")),
    )
    op.create_index(
        op.f("ix_recipients_batch_id_mobile"),
        "recipients",
        ["batch_id", "mobile"],
        sqlite_where=sa.text("batch_id IS NOT NULL"),
        postgresql_where=sa.text("batch_id IS NOT NULL"),
    )
    op.create_index(op.f("ix_recipients_campaign_id_state"), "recipients", ["campaign_id", "state"])
    op.create_index(op.f("ix_recipients_chunk_id"), "recipients", ["chunk_id"])

    op.create_table(
        "reports",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=True),
        sa.Column("mobile", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ref", sa.String(length=60), nullable=True),
        sa.Column("recipient_id", BIG_ID, nullable=True),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw_pull_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["raw_pull_id"], ["raw_pulls.id"], name=op.f("fk_reports_raw_pull_id_raw_pulls")
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
            name=op.f("fk_reports_recipient_id_recipients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index(op.f("ix_reports_batch_id_mobile"), "reports", ["batch_id", "mobile"])
    op.create_index(op.f("ix_reports_raw_pull_id"), "reports", ["raw_pull_id"])
    op.create_index(op.f("ix_reports_recipient_id"), "reports", ["recipient_id"])
    op.create_index(op.f("ix_reports_ref"), "reports", ["ref"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reports_ref"), table_name="reports")
    op.drop_index(op.f("ix_reports_recipient_id"), table_name="reports")
    op.drop_index(op.f("ix_reports_raw_pull_id"), table_name="reports")
    op.drop_index(op.f("ix_reports_batch_id_mobile"), table_name="reports")

    op.drop_table("reports")
    op.drop_index(op.f("ix_recipients_chunk_id"), table_name="recipients")
    op.drop_index(op.f("ix_recipients_campaign_id_state"), table_name="recipients")
    op.drop_index(op.f("ix_recipients_batch_id_mobile"), table_name="recipients")

    op.drop_table("recipients")
    op.drop_index(op.f("ix_attempts_chunk_id"), table_name="attempts")

    op.drop_table("attempts")
    op.drop_index(op.f("ix_uploads_sha256"), table_name="uploads")
    op.drop_index(op.f("ix_uploads_campaign_id"), table_name="uploads")

    op.drop_table("uploads")
    op.drop_index(op.f("ix_replies_mobile"), table_name="replies")
    op.drop_index(op.f("ix_replies_campaign_id"), table_name="replies")

    op.drop_table("replies")
    op.drop_index(op.f("ix_chunks_state_lease_until"), table_name="chunks")
    op.drop_index(op.f("ix_chunks_parent_id"), table_name="chunks")
    op.drop_index(op.f("ix_chunks_campaign_id_state"), table_name="chunks")
    op.drop_index(op.f("ix_chunks_batch_id"), table_name="chunks")

    op.drop_table("chunks")
    op.drop_index(op.f("ix_audit_log_campaign_id_at"), table_name="audit_log")

    op.drop_table("audit_log")
    op.drop_table("users")
    op.drop_index(op.f("ix_raw_pulls_parsed_at"), table_name="raw_pulls")

    op.drop_table("raw_pulls")
    op.drop_table("optouts")
    op.drop_index(op.f("ix_campaigns_state_start_at"), table_name="campaigns")

    op.drop_table("campaigns")
