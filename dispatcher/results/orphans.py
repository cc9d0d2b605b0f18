"""Reports that match no recipient, and bodies (or records) set aside because they could not be read
or stored: kept, and listed for a person to look at."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.store import RawPull, ReportRow


def list_orphans(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ReportRow).where(ReportRow.recipient_id.is_(None)).order_by(ReportRow.id.desc()).limit(limit)
    ).scalars()
    return [
        {
            "id": r.id,
            "account": r.account,
            "batch_id": r.batch_id,
            "mobile": r.mobile,
            "status": r.status,
            "ref": r.ref,
            "reported_at": r.reported_at.isoformat() if r.reported_at else None,
        }
        for r in rows
    ]


def list_set_aside(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    """Bodies with an error: unreadable as a whole, or some of their records could not be stored (the
    error names them; the body's other records were processed)."""
    rows = session.execute(
        select(RawPull).where(RawPull.error.is_not(None)).order_by(RawPull.id.desc()).limit(limit)
    ).scalars()
    return [
        {
            "id": r.id,
            "account": r.account,
            "kind": r.kind,
            "source": r.source,
            "received_at": r.received_at.isoformat(),
            "error": r.error,
            "body": r.body[:500],
        }
        for r in rows
    ]
