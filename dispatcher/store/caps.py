"""Frequency caps on the store: each send counted per number and China day (``contact_counts``) as its
chunk is claimed, taken back when the vendor did not take it, and a recipient over a cap held back.

Atomic across workers and hosts: a claim first adds its sends to today's row of each number, in number
order (PostgreSQL locks that row until the claim commits, so a second claim of the same number waits,
then sees the first's sends), then reads what each number got over the caps' days. What goes over is
given back and its recipients are ``capped``. SQLite has one writer at a time: the same order holds.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from dispatcher.caps import Cap, china_day, longest, over
from dispatcher.store.models import Campaign, Chunk, ContactCount, Recipient
from dispatcher.store.types import RecipientState, db_now

_counts: Table = ContactCount.__table__  # type: ignore[assignment]
_recipients: Table = Recipient.__table__  # type: ignore[assignment]
CAPPED_CODE = "capped"
# States in which the vendor did not take a send (or it never went): its count is given back.
NOT_TAKEN = tuple(
    s.value
    for s in (
        RecipientState.QUEUED,
        RecipientState.PLANNED,
        RecipientState.FAILED,
        RecipientState.REJECTED,
        RecipientState.CANCELLED,
        RecipientState.CAPPED,
    )
)
_IN_LIST = 2000  # numbers per IN list (SQLite's bound parameters)


@dataclass(frozen=True)
class CapCheck:
    """What a claim on one account applies: the caps its campaigns keep (may be none: sends are still
    counted, for the caps of other accounts)."""

    caps: tuple[Cap, ...]


@dataclass(frozen=True)
class Capped:
    recipient_id: int
    cap: Cap


def today(conn: Connection) -> date:
    """The China calendar day by the database's clock (every host counts the same day)."""
    return china_day(conn.execute(select(db_now())).scalar_one())


def _exempt_chunks(conn: Connection, chunk_ids: Iterable[int]) -> set[int]:
    """Chunks of proofs and transactional campaigns: neither capped nor counted."""
    return set(
        conn.execute(
            select(Chunk.id)
            .join(Campaign, Campaign.id == Chunk.campaign_id)
            .where(Chunk.id.in_(list(chunk_ids)), Campaign.proof | Campaign.transactional)
        ).scalars()
    )


def _add(conn: Connection, day: date, added: Sequence[tuple[str, int]]) -> None:
    """Add ``(mobile, n)`` to each number's count of ``day``, in number order (the rows' lock order)."""
    rows = [{"mobile": m, "day": day, "sent": n} for m, n in sorted(added)]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_counts)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["mobile", "day"], set_={"sent": _counts.c.sent + stmt.excluded.sent}
        ),
        rows,
    )


def _take_back(conn: Connection, taken: Iterable[tuple[str, date, int]]) -> None:
    rows = [{"b_mobile": m, "b_day": d, "b_n": n} for m, d, n in sorted(taken)]
    if rows:
        c = _counts.c
        conn.execute(
            update(_counts)
            .where(c.mobile == bindparam("b_mobile"), c.day == bindparam("b_day"))
            .values(sent=case((c.sent > bindparam("b_n"), c.sent - bindparam("b_n")), else_=0)),
            rows,
        )


def sent_by_day(conn: Connection, mobiles: Sequence[str], since: date) -> dict[str, dict[date, int]]:
    """What each number got per China day since ``since``."""
    found: dict[str, dict[date, int]] = defaultdict(dict)
    c = _counts.c
    for start in range(0, len(mobiles), _IN_LIST):
        part = list(mobiles[start : start + _IN_LIST])
        for mobile, day, sent in conn.execute(
            select(c.mobile, c.day, c.sent).where(c.mobile.in_(part), c.day >= since)
        ):
            found[mobile][day] = sent
    return found


def count_and_cap(
    conn: Connection, check: CapCheck, claimed: Sequence[tuple[int, int, str, date | None]]
) -> dict[int, Capped]:
    """Count the sends of a claim (``(chunk id, recipient id, mobile, counted_on)`` of each recipient
    it moved to ``sending``) and hold back those over a cap: their recipients become ``capped`` and
    leave their chunk. Returns them by recipient id. Caller's (the claim's) transaction."""
    exempt = _exempt_chunks(conn, {chunk_id for chunk_id, *_ in claimed})
    fresh = [
        (rid, mobile)
        for chunk_id, rid, mobile, counted in claimed
        if counted is None and mobile and chunk_id not in exempt
    ]
    if not fresh:
        return {}
    day = today(conn)
    adding = Counter(mobile for _, mobile in fresh)
    _add(conn, day, list(adding.items()))
    capped: dict[int, Capped] = {}
    if check.caps:
        had = sent_by_day(conn, sorted(adding), day - timedelta(days=longest(check.caps) - 1))
        given_back = []
        least = min(cap.count for cap in check.caps)
        of_mobile: dict[str, list[int]] = defaultdict(list)  # built once: a claim may hold 300,000 numbers
        for rid, m in fresh:
            of_mobile[m].append(rid)
        for mobile, n in adding.items():
            days = had.get(mobile, {})
            if n <= least and len(days) <= 1 and days.get(day, n) == n:
                continue  # nothing but this claim's own sends, within every cap: the usual case
            before = dict(days)
            before[day] = before.get(day, n) - n  # without this claim's own sends
            excess, cap = over(before, day, check.caps, n)
            if excess and cap is not None:
                held = of_mobile[mobile][-excess:]
                capped.update((rid, Capped(rid, cap)) for rid in held)
                given_back.append((mobile, day, excess))
        _take_back(conn, given_back)
    r = _recipients.c
    counted = [rid for rid, _ in fresh if rid not in capped]
    for start in range(0, len(counted), _IN_LIST):
        conn.execute(
            update(_recipients).where(r.id.in_(counted[start : start + _IN_LIST])).values(counted_on=day)
        )
    by_cap: dict[Cap, list[int]] = defaultdict(list)
    for one in capped.values():
        by_cap[one.cap].append(one.recipient_id)
    for cap, all_ids in by_cap.items():
        for start in range(0, len(all_ids), _IN_LIST):
            ids = all_ids[start : start + _IN_LIST]
            conn.execute(
                update(_recipients)
                .where(r.id.in_(ids))
                .values(
                    state=RecipientState.CAPPED.value,
                    chunk_id=None,
                    reject_reason=f"frequency cap: {cap.count} in {cap.days} days",
                    reject_code=CAPPED_CODE,
                    reject_params={"count": cap.count, "days": cap.days},
                )
            )
    return capped


def uncount(conn: Connection, which: ColumnElement[bool]) -> int:
    """Give back the counts of the recipients ``which`` selects whose send the vendor did not take
    (failed, queued again, split into new chunks ...). Caller's transaction. Returns how many."""
    r = _recipients.c
    rows = conn.execute(
        select(r.id, r.mobile, r.counted_on).where(which, r.counted_on.is_not(None), r.state.in_(NOT_TAKEN))
    ).all()
    if not rows:
        return 0
    ids = [row.id for row in rows]
    for start in range(0, len(ids), _IN_LIST):
        conn.execute(
            update(_recipients).where(r.id.in_(ids[start : start + _IN_LIST])).values(counted_on=None)
        )
    taken = Counter((row.mobile, row.counted_on) for row in rows if row.mobile)
    _take_back(conn, [(m, d, n) for (m, d), n in taken.items()])
    return len(rows)


def would_cap(conn: Connection, caps: Sequence[Cap], mobiles: Sequence[str]) -> dict[str, Any]:
    """How many of ``mobiles`` (one message each) a cap would hold back if sent now: the preview's figure."""
    if not caps or not mobiles:
        return {"capped": 0}
    day = today(conn)
    had = sent_by_day(conn, sorted(set(mobiles)), day - timedelta(days=longest(caps) - 1))
    held = sum(1 for m in mobiles if m in had and over(had[m], day, caps, 1)[0])
    return {"capped": held}
