"""Frequency caps on the store: each send counted per number and China day (``contact_counts``) as its
chunk is claimed, taken back when the vendor did not take it, and a recipient over a cap held back.

Atomic across workers and hosts: the counting step of a claim is serialised (PostgreSQL: one
transaction-level advisory lock, held until the claim commits; SQLite: its one writer), then it reads
the day, adds its sends, and reads what each number got over the caps' days. A lock on one key, not
on each number's row of the day: a row of the day does not stop a claim counting the next day (just
past China's midnight) from missing one counting the day before, and a lock per number would fill
PostgreSQL's shared lock table (a claim counts thousands of numbers). Every write to the counts goes
in (number, day) order in one statement, so two of them never wait on each other's rows crosswise.

A message is counted once, on the day its send last went out: a request that may have gone out
(``unknown``) and is sent again (``retry --include-unknown``, a failover, ``settle_unknown_after``)
keeps its count when re-sent the same day (it was checked then); re-sent on a later day its count
moves to that day and is checked against the caps there. If it is capped then, the earlier day's
count stays: that request may have reached the person.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    Select,
    String,
    Table,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.schema import Column

from dispatcher.caps import Cap, china_day, longest, over
from dispatcher.config import Settings
from dispatcher.store.models import Campaign, Chunk, ContactCount, Recipient
from dispatcher.store.types import RecipientState, db_now

_counts: Table = ContactCount.__table__  # type: ignore[assignment]
_recipients: Table = Recipient.__table__  # type: ignore[assignment]
_chunks: Table = Chunk.__table__  # type: ignore[assignment]
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
_LOCK_KEY = 0x63617073  # "caps": the PostgreSQL advisory lock of the counting step


@dataclass(frozen=True)
class CapCheck:
    """What a claim on one account applies: the caps its campaigns keep (may be none: sends are still
    counted, for the caps of other accounts)."""

    caps: tuple[Cap, ...]


@dataclass(frozen=True)
class Capped:
    recipient_id: int
    cap: Cap


def _one_of(conn: Connection, column: Column[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column`` is one of ``values``, bound as ONE parameter (a JSON list on SQLite, an array on
    PostgreSQL): a claim's thousands of numbers need neither an IN list per slice nor SQLAlchemy's
    work on each of its elements, and the database still looks each one up in the index."""
    if conn.dialect.name == "postgresql":
        kind = BigInteger() if isinstance(column.type, BigInteger) else String()
        return column == any_(cast(bindparam(None, list(values), type_=ARRAY(kind)), ARRAY(kind)))
    listed = func.json_each(bindparam(None, json.dumps(list(values)), type_=String)).table_valued("value")
    return column.in_(select(listed.c.value))


def today(conn: Connection) -> date:
    """The China calendar day by the database's clock (every host counts the same day)."""
    return china_day(conn.execute(select(db_now())).scalar_one())


def _exempt_chunks(conn: Connection, chunk_ids: Iterable[int]) -> set[int]:
    """Chunks of proofs and transactional campaigns: neither capped nor counted."""
    return set(
        conn.execute(
            select(Chunk.id)
            .join(Campaign, Campaign.id == Chunk.campaign_id)
            .where(_one_of(conn, _chunks.c.id, list(chunk_ids)), Campaign.proof | Campaign.transactional)
        ).scalars()
    )


def _serialise(conn: Connection) -> None:
    """Wait for any other claim's counting step to commit (PostgreSQL; SQLite has one writer)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))


# Each count's change in one statement, in (number, day) order; a change below 0 stops at 0, and a
# give-back whose row is gone (pruned) adds none.
_APPLY = {
    "sqlite": text(
        "INSERT INTO contact_counts (mobile, day, sent)"
        " SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]')"
        " FROM json_each(:rows) AS j"
        " WHERE json_extract(j.value, '$[2]') > 0 OR EXISTS (SELECT 1 FROM contact_counts AS c"
        "  WHERE c.mobile = json_extract(j.value, '$[0]') AND c.day = json_extract(j.value, '$[1]'))"
        " ORDER BY j.key"
        " ON CONFLICT (mobile, day) DO UPDATE SET sent = max(contact_counts.sent + excluded.sent, 0)"
    ),
    "postgresql": text(
        "INSERT INTO contact_counts (mobile, day, sent)"
        " SELECT t.m, t.d, t.n"
        " FROM unnest(CAST(:ms AS text[]), CAST(:ds AS date[]), CAST(:ns AS integer[])) AS t(m, d, n)"
        " WHERE t.n > 0 OR EXISTS (SELECT 1 FROM contact_counts AS c WHERE c.mobile = t.m AND c.day = t.d)"
        " ORDER BY t.m, t.d"
        " ON CONFLICT (mobile, day) DO UPDATE SET sent = greatest(contact_counts.sent + excluded.sent, 0)"
    ),
}


def _apply(conn: Connection, deltas: Mapping[tuple[str, date], int]) -> None:
    """Add each ``(mobile, day): n`` to that count (a negative ``n`` gives back, never below 0), in
    (number, day) order, in one statement: the rows' lock order."""
    rows = sorted((m, d, n) for (m, d), n in deltas.items() if n)
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        ms, ds, ns = (list(col) for col in zip(*rows, strict=True))
        conn.execute(_APPLY["postgresql"], {"ms": ms, "ds": ds, "ns": ns})
    else:
        conn.execute(_APPLY["sqlite"], {"rows": json.dumps([(m, d.isoformat(), n) for m, d, n in rows])})


def _window(conn: Connection, mobiles: Sequence[str], since: date, until: date) -> Any:
    c = _counts.c
    return (_one_of(conn, c.mobile, mobiles), c.day >= since, c.day <= until)


def sent_by_day(
    conn: Connection, mobiles: Sequence[str], since: date, until: date
) -> dict[str, dict[date, int]]:
    """What each number got per China day from ``since`` to ``until``."""
    found: dict[str, dict[date, int]] = defaultdict(dict)
    c = _counts.c
    for mobile, day, sent in conn.execute(
        select(c.mobile, c.day, c.sent).where(*_window(conn, mobiles, since, until))
    ):
        found[mobile][day] = sent
    return found


def _beyond(conn: Connection, mobiles: Any, since: date, until: date, least: int) -> list[str]:
    """Of ``mobiles`` (a query of them), those that got more than ``least`` messages over the days:
    only these can be over a cap whose count is ``least`` or more (usually none: the database adds)."""
    c = _counts.c
    query = select(c.mobile).where(c.mobile.in_(mobiles), c.day >= since, c.day <= until).group_by(c.mobile)
    return sorted(conn.execute(query.having(func.sum(c.sent) > least)).scalars())


def _count(conn: Connection, ids: Sequence[int], day: date) -> None:
    """Count the sends of recipients ``ids`` on ``day`` in ONE statement, in (number, day) order: each
    number's new sends added to ``day``; a re-send of an earlier day's request moves its count here
    (the database groups the rows: no per-recipient work in Python)."""
    r, c = _recipients.c, _counts.alias("c").c
    mine = (_one_of(conn, r.id, ids), r.mobile.is_not(None))
    added = (
        select(r.mobile.label("m"), literal(day, Date()).label("d"), func.count().label("n"))
        .where(*mine, or_(r.counted_on.is_(None), r.counted_on != day))
        .group_by(r.mobile)
    )
    moved = (
        select(r.mobile.label("m"), r.counted_on.label("d"), (-func.count()).label("n"))
        .where(*mine, r.counted_on != day)
        .group_by(r.mobile, r.counted_on)
    )
    t = union_all(added, moved).subquery("t")
    gone = ~select(c.mobile).where(c.mobile == t.c.m, c.day == t.c.d).exists()  # pruned: nothing to move
    rows = select(t.c.m, t.c.d, t.c.n).where(~((t.c.n < 0) & gone)).order_by(t.c.m, t.c.d)
    conn.execute(_upsert(conn, rows))


def _upsert(conn: Connection, rows: Select[Any]) -> Any:
    """INSERT ``rows`` (mobile, day, n) into the counts, adding to a count already there, never below 0."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_counts).from_select(["mobile", "day", "sent"], rows)
    total = _counts.c.sent + stmt.excluded.sent
    return stmt.on_conflict_do_update(
        index_elements=["mobile", "day"], set_={"sent": case((total < 0, 0), else_=total)}
    )


def count_and_cap(
    conn: Connection,
    check: CapCheck,
    claimed: Sequence[tuple[int, int, str, date | None]],
    *,
    day: date | None = None,
) -> dict[int, Capped]:
    """Count the sends of a claim (``(chunk id, recipient id, mobile, counted_on)`` of each recipient
    it moved to ``sending``) and hold back those over a cap: their recipients become ``capped`` and
    leave their chunk. Returns them by recipient id. ``day``: the China day to count on (default:
    the database's; tests inject one). Caller's (the claim's) transaction."""
    exempt = _exempt_chunks(conn, {chunk_id for chunk_id, *_ in claimed})
    ids = [rid for chunk_id, rid, _, _ in claimed if chunk_id not in exempt]
    if not ids:
        return {}
    _serialise(conn)
    day = day or today(conn)
    _count(conn, ids, day)
    r = _recipients.c
    unsettled = (
        _one_of(conn, r.id, ids),
        r.mobile.is_not(None),
        or_(r.counted_on.is_(None), r.counted_on != day),
    )
    capped: dict[int, Capped] = {}
    earlier: dict[int, date] = {}
    if check.caps:
        since = day - timedelta(days=longest(check.caps) - 1)
        suspects = _beyond(
            conn, select(r.mobile).where(*unsettled), since, day, min(cap.count for cap in check.caps)
        )
        if suspects:
            capped, earlier = _hold_back(conn, check.caps, unsettled, suspects, since, day)
    conn.execute(update(_recipients).where(*unsettled).values(counted_on=day))
    by_cap: dict[tuple[Cap, date | None], list[int]] = defaultdict(list)
    for one in capped.values():
        by_cap[(one.cap, earlier.get(one.recipient_id))].append(one.recipient_id)
    for (cap, counted_on), held in by_cap.items():
        conn.execute(
            update(_recipients)
            .where(_one_of(conn, r.id, held))
            .values(
                state=RecipientState.CAPPED.value,
                chunk_id=None,
                counted_on=counted_on,
                reject_reason=f"frequency cap: {cap.count} in {cap.days} days",
                reject_code=CAPPED_CODE,
                reject_params={"count": cap.count, "days": cap.days},
            )
        )
    return capped


def _hold_back(
    conn: Connection, caps: tuple[Cap, ...], unsettled: Any, suspects: list[str], since: date, day: date
) -> tuple[dict[int, Capped], dict[int, date]]:
    """Which of this claim's recipients of ``suspects`` go over a cap; their counts given back (a
    re-send's earlier day keeps its count: that request may have reached the person)."""
    r = _recipients.c
    of_mobile: dict[str, list[tuple[int, date | None]]] = defaultdict(list)
    for rid, mobile, counted in conn.execute(
        select(r.id, r.mobile, r.counted_on)
        .where(*unsettled, _one_of(conn, r.mobile, suspects))
        .order_by(r.id)
    ):
        of_mobile[mobile].append((rid, counted))
    had = sent_by_day(conn, suspects, since, day)
    capped: dict[int, Capped] = {}
    earlier: dict[int, date] = {}
    back: Counter[tuple[str, date]] = Counter()
    for mobile in suspects:
        n = len(of_mobile[mobile])
        before = dict(had.get(mobile, {}))
        before[day] = before.get(day, n) - n  # without this claim's own sends
        excess, cap = over(before, day, caps, n)
        if excess and cap is not None:
            for rid, counted in of_mobile[mobile][-excess:]:
                capped[rid] = Capped(rid, cap)
                back[(mobile, day)] -= 1
                if counted is not None:
                    back[(mobile, counted)] += 1
                    earlier[rid] = counted
    _apply(conn, back)
    return capped, earlier


def uncount(conn: Connection, which: ColumnElement[bool]) -> int:
    """Give back the counts of the recipients ``which`` selects whose send the vendor did not take
    (failed, queued again, split into new chunks ...), in one statement. Caller's transaction.
    Returns how many."""
    r = _recipients.c
    rows = conn.execute(
        select(r.id, r.mobile, r.counted_on).where(which, r.counted_on.is_not(None), r.state.in_(NOT_TAKEN))
    ).all()
    if not rows:
        return 0
    conn.execute(
        update(_recipients).where(_one_of(conn, r.id, [row.id for row in rows])).values(counted_on=None)
    )
    taken = Counter((row.mobile, row.counted_on) for row in rows if row.mobile)
    _apply(conn, {key: -n for key, n in taken.items()})
    return len(rows)


def would_cap(conn: Connection, caps: Sequence[Cap], mobiles: Sequence[str]) -> dict[str, Any]:
    """How many of ``mobiles`` (one message each) a cap would hold back if sent now: the preview's figure."""
    if not caps or not mobiles:
        return {"capped": 0}
    day = today(conn)
    had = sent_by_day(conn, sorted(set(mobiles)), day - timedelta(days=longest(caps) - 1), day)
    held = sum(1 for m in mobiles if m in had and over(had[m], day, caps, 1)[0])
    return {"capped": held}


def longest_window(settings: Settings) -> int:
    """Days the longest configured cap reads (global or any account's); 0 with no cap."""
    return longest(
        [*settings.frequency_caps, *(c for a in settings.accounts.values() for c in a.frequency_caps)]
    )


def prune(session: Session, settings: Settings) -> int:
    """Delete the counts of days no configured cap reads any more (all but today's with no cap).
    Caller commits. Returns how many rows went."""
    conn = session.connection()
    first = today(conn) - timedelta(days=max(longest_window(settings), 1) - 1)
    result = conn.execute(delete(_counts).where(_counts.c.day < first))
    return int(getattr(result, "rowcount", 0) or 0)
