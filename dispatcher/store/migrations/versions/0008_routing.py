"""routing: fallback accounts, A/B variants, the balance guard's hold

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

``campaigns.fallbacks``: the accounts still to fail over to, in order (JSON list). ``campaigns.variants``:
the A/B templates and their shares (JSON). ``campaigns.routing``: the failovers done and the balance
guard's last refusal (JSON). ``recipients.account``: the account a recipient was settled on when the
campaign moved to another (null: the campaign's current account). ``recipients.variant``: its variant.
Nullable columns only: nothing to back-fill, and SQLite adds them in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("fallbacks", sa.JSON(), nullable=True))
    op.add_column("campaigns", sa.Column("variants", sa.JSON(), nullable=True))
    op.add_column("campaigns", sa.Column("routing", sa.JSON(), nullable=True))
    op.add_column("recipients", sa.Column("account", sa.String(length=64), nullable=True))
    op.add_column("recipients", sa.Column("variant", sa.String(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column("recipients", "variant")
    op.drop_column("recipients", "account")
    op.drop_column("campaigns", "routing")
    op.drop_column("campaigns", "variants")
    op.drop_column("campaigns", "fallbacks")
