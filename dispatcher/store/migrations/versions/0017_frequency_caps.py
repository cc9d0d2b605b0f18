"""frequency caps: recipient state ``capped``, per-number daily counts, transactional campaigns

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

``contact_counts`` holds the messages sent to one number per China calendar day (in flight or taken),
what the caps count; ``recipients.counted_on`` the day a recipient's send was counted on (so a send the
vendor did not take is taken back from that day's count). ``recipients.state`` may be ``capped``.
``campaigns.transactional``: neither capped nor counted. Nullable or defaulted columns: nothing is
rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "'rejected', 'planned', 'queued', 'sending', 'accepted', 'failed', 'unknown', 'delivered', "
    "'undelivered', 'expired', 'cancelled'"
)
AFTER = BEFORE + ", 'capped'"


def _set_state_check(values: str, old: str) -> None:
    """Replace ``ck_recipients_state`` by ``state IN (<values>)``: PostgreSQL drops and adds it; SQLite
    rewrites the constraint's text in place (as migration 0007 does, and says why)."""
    name = "ck_recipients_state"
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(name), "recipients", type_="check")
        op.create_check_constraint(op.f(name), "recipients", f"state IN ({values})")
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'recipients'"
    ).scalar_one()
    before, after = f"state IN ({old})", f"state IN ({values})"
    if before not in sql:
        raise RuntimeError("recipients: its state constraint is not the expected one; not migrated")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'recipients'",
            (sql.replace(before, after),),
        )
        bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA quick_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"recipients: the schema change left the database inconsistent: {problems}")


def upgrade() -> None:
    _set_state_check(AFTER, BEFORE)
    op.add_column("recipients", sa.Column("counted_on", sa.Date(), nullable=True))
    op.add_column("campaigns", sa.Column("transactional", sa.Boolean(), server_default="0", nullable=False))
    op.create_table(
        "contact_counts",
        sa.Column("mobile", sa.String(20), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("mobile", "day", name="pk_contact_counts"),
    )


def downgrade() -> None:
    op.drop_table("contact_counts")
    op.execute("UPDATE recipients SET state = 'rejected' WHERE state = 'capped'")
    # SQLite drops a column in place (3.35+): copying campaigns would cascade to its dependants.
    op.execute("ALTER TABLE campaigns DROP COLUMN transactional")
    op.execute("ALTER TABLE recipients DROP COLUMN counted_on")
    _set_state_check(BEFORE, AFTER if op.get_bind().dialect.name == "sqlite" else "")
