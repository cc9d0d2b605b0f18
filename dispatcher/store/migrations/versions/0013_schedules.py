"""schedules: recurring campaigns and their firings

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

A schedule fires on a cron rhythm and each firing creates one campaign (``dispatcher.schedules``).
``schedule_runs`` is unique per (schedule, firing time): the insert that wins is the one firing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OUTCOMES = ("firing", "created", "unchanged", "missed", "not_workday", "failed")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("cron", sa.String(120), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("fallbacks", sa.JSON(), nullable=True),
        sa.Column("window", sa.String(11), nullable=True),
        sa.Column("workdays", sa.Boolean(), nullable=False),
        sa.Column("grace_seconds", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint("name", name="uq_schedules_name"),
    )
    op.create_table(
        "schedule_runs",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("schedule_id", BIG_ID, nullable=False),
        sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("campaign_id", BIG_ID, nullable=True),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("source_sha256", sa.String(64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_runs"),
        sa.UniqueConstraint("schedule_id", "fire_at", name="uq_schedule_runs_schedule_id_fire_at"),
        sa.CheckConstraint(
            "outcome IN (" + ", ".join(repr(o) for o in OUTCOMES) + ")", name="ck_schedule_runs_outcome"
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name="fk_schedule_runs_schedule_id_schedules",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_schedule_runs_campaign_id_campaigns",
            ondelete="SET NULL",
        ),
    )


def downgrade() -> None:
    op.drop_table("schedule_runs")
    op.drop_table("schedules")
