"""the desk: campaign state ``sent``, recipient state ``cancelled``, proofs, reject reasons as data

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

``campaigns.state`` may be ``sent`` (every chunk final, delivery reports still due); ``recipients.state``
may be ``cancelled`` (never sent: the campaign was cancelled first; such rows were ``failed`` with class
``cancelled`` before, and become ``cancelled`` here). ``campaigns.proof``: a proof sent before the real
campaign. ``recipients.reject_code`` / ``reject_params``: the reject reason as data, said in the reader's
language by pages and exports.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CAMPAIGN_BEFORE = "'draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled'"
CAMPAIGN_AFTER = "'draft', 'scheduled', 'running', 'paused', 'sent', 'completed', 'cancelled'"
RECIPIENT_BEFORE = (
    "'rejected', 'planned', 'queued', 'sending', 'accepted', 'failed', 'unknown', 'delivered', "
    "'undelivered', 'expired'"
)
RECIPIENT_AFTER = RECIPIENT_BEFORE + ", 'cancelled'"
CHECKS = {"campaigns": (CAMPAIGN_BEFORE, CAMPAIGN_AFTER), "recipients": (RECIPIENT_BEFORE, RECIPIENT_AFTER)}


def _set_state_check(table: str, values: str, old: str) -> None:
    """Replace ``ck_<table>_state`` by ``state IN (<values>)``.

    PostgreSQL: drop and add. SQLite cannot alter a constraint, and copying the table (Alembic's batch
    mode) would drop the old one, which with foreign keys on deletes its chunks and recipients (ON
    DELETE CASCADE). The constraint is only text in the schema: SQLite's documented procedure for a
    change that leaves the stored rows valid (sqlite.org, ALTER TABLE, "Making Other Kinds Of Table
    Schema Changes") rewrites that text in place, in this transaction, and bumps the schema version.
    Only widening is done that way; the downgrade moves the rows out of the removed states first."""
    name = f"ck_{table}_state"
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(name), table, type_="check")
        op.create_check_constraint(op.f(name), table, f"state IN ({values})")
        return
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    before, after = f"state IN ({old})", f"state IN ({values})"
    if before not in sql:
        raise RuntimeError(f"{table}: its state constraint is not the expected one; not migrated")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
            (sql.replace(before, after), table),
        )
        bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA quick_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"{table}: the schema change left the database inconsistent: {problems}")


def upgrade() -> None:
    for table, (before, after) in CHECKS.items():
        _set_state_check(table, after, before)
    op.add_column("campaigns", sa.Column("proof", sa.Boolean(), server_default="0", nullable=False))
    op.add_column("recipients", sa.Column("reject_code", sa.String(length=32), nullable=True))
    op.add_column("recipients", sa.Column("reject_params", sa.JSON(), nullable=True))
    # What a cancel ended before this version: failed with class "cancelled", never sent.
    op.execute(
        "UPDATE recipients SET state = 'cancelled' WHERE state = 'failed' AND error_class = 'cancelled'"
    )


def downgrade() -> None:
    op.execute("UPDATE recipients SET state = 'failed' WHERE state = 'cancelled'")
    op.execute("UPDATE campaigns SET state = 'completed' WHERE state = 'sent'")
    op.drop_column("recipients", "reject_params")
    op.drop_column("recipients", "reject_code")
    op.drop_column("campaigns", "proof")
    if op.get_bind().dialect.name == "sqlite":
        # Narrowing: no row holds a removed state any more (above), so the stored rows stay valid.
        for table, (before, after) in CHECKS.items():
            _set_state_check(table, before, after)
        return
    for table, (before, _) in CHECKS.items():
        _set_state_check(table, before, "")
