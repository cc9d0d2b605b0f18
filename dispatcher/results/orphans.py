"""Reports that match no recipient: kept, and listed for a person to look at."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.store import ReportRow


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
