"""The opt-out list in the store: numbers never sent to again.

Adding a number also withdraws it from every campaign that has not sent to it yet (recipients still
``planned`` or ``queued`` leave their chunk and become ``rejected``, reason ``opted out``), so no later
send carries it; a number in flight then (or failed) is withdrawn when its chunk is next claimed;
``campaign create`` filters uploads against the list. The web app, the API, the CLI and replies all
add numbers here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dispatcher.contacts.phones import normalise
from dispatcher.errors import InputError
from dispatcher.store import Chunk, ChunkState, OptOut, Recipient, RecipientState, utcnow
from dispatcher.store.chunks import OPTED_OUT

REASON = OPTED_OUT
_PENDING = (RecipientState.PLANNED.value, RecipientState.QUEUED.value)
_OPEN_CHUNKS = (ChunkState.PLANNED.value, ChunkState.QUEUED.value)
_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True)
class Entry:
    mobile: str
    source: str
    added_at: datetime
    note: str | None


def add(session: Session, mobiles: Iterable[str], *, source: str, note: str | None = None) -> int:
    """Add numbers (already normalised) to the list; returns how many were new. Caller's transaction."""
    unique = sorted(set(mobiles))
    if not unique:
        return 0
    dialect = session.connection().dialect.name
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    added = 0
    for start in range(0, len(unique), 500):
        part = unique[start : start + 500]
        result = session.execute(
            insert_(OptOut)
            .values([{"mobile": m, "source": source, "added_at": now, "note": note} for m in part])
            .on_conflict_do_nothing(index_elements=["mobile"])
            .returning(OptOut.mobile)
        )
        added += len(result.all())
        _withdraw(session, part)
    return added


def _withdraw(session: Session, mobiles: list[str]) -> None:
    """Take the numbers out of every chunk not yet claimed. A claim moves recipients to ``sending``
    under a row lock, so each is either withdrawn before its request is built or sent (and a number
    queued again later is withdrawn by the claim itself)."""
    pending = (Recipient.mobile.in_(mobiles), Recipient.state.in_(_PENDING))
    chunk_ids = sorted(
        {c for c in session.execute(select(Recipient.chunk_id).where(*pending)).scalars() if c is not None}
    )
    if not chunk_ids:
        return
    # The chunks' rows first, then their recipients: the order a claim and a worker's record take
    # them in (PostgreSQL would otherwise deadlock on a chunk whose answer is being recorded). Neither
    # update moves ``updated_at``: a stuck chunk's queue age counts from when it was queued.
    session.execute(
        update(Chunk)
        .where(Chunk.id.in_(chunk_ids))
        .values(recipient_count=Chunk.recipient_count, updated_at=Chunk.updated_at),
        execution_options=_NO_SYNC,
    )
    session.execute(
        update(Recipient)
        .where(*pending, Recipient.chunk_id.in_(chunk_ids))
        .values(state=RecipientState.REJECTED.value, reject_reason=REASON, chunk_id=None),
        execution_options=_NO_SYNC,
    )
    remaining = select(func.count()).where(Recipient.chunk_id == Chunk.id).scalar_subquery()
    session.execute(
        update(Chunk)
        .where(Chunk.id.in_(chunk_ids))
        .values(recipient_count=remaining, updated_at=Chunk.updated_at),
        execution_options=_NO_SYNC,
    )
    # A chunk left empty has nothing to send: closed like a cancelled one.
    session.execute(
        update(Chunk)
        .where(Chunk.id.in_(chunk_ids), Chunk.recipient_count == 0, Chunk.state.in_(_OPEN_CHUNKS))
        .values(state=ChunkState.FAILED.value, error_class="opted_out", updated_at=utcnow()),
        execution_options=_NO_SYNC,
    )


def remove(session: Session, mobiles: Iterable[str]) -> int:
    """Take numbers off the list (a person asked again to receive). Returns how many were there."""
    result = session.execute(
        delete(OptOut).where(OptOut.mobile.in_(list(mobiles))), execution_options=_NO_SYNC
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def entries(session: Session) -> list[Entry]:
    rows = session.execute(
        select(OptOut.mobile, OptOut.source, OptOut.added_at, OptOut.note).order_by(
            OptOut.added_at, OptOut.id
        )
    )
    return [Entry(*row) for row in rows]


def normalise_all(values: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(numbers, unreadable)``: +86, spaces and dashes accepted like in uploads."""
    good: list[str] = []
    bad: list[str] = []
    for value in values:
        if not value.strip():
            continue
        number = normalise(value.strip())
        (good if number else bad).append(number or value.strip())
    return good, bad


def read_file(path: Path) -> list[str]:
    """Numbers of a text or CSV file, one per line (the first column of a CSV)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="gb18030")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return [line.split(",")[0].strip().strip('"') for line in text.splitlines()]
