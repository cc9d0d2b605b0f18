"""Recipients in bulk: one row per input row, written fast enough for a million-row upload."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, pairwise, repeat
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from dispatcher.store.bulk import write_rows
from dispatcher.store.models import Recipient
from dispatcher.store.types import RecipientState

_TABLE = cast(Table, Recipient.__table__)
_PLANNED = RecipientState.PLANNED.value
COLUMNS = (
    "campaign_id",
    "row_number",
    "position",
    "mobile",
    "raw_value",
    "text",
    "segments",
    "reject_reason",
    "state",
    "chunk_id",
)


class NewRecipient(NamedTuple):
    """One input row as the uploader hands it over. A ``reject_reason`` makes it ``rejected``."""

    row_number: int
    position: int
    mobile: str | None
    raw_value: str | None
    text: str | None = None
    segments: int = 0
    reject_reason: str | None = None
    chunk_id: int | None = None  # the planned chunk that will carry it


def bulk_insert_recipients(session: Session, campaign_id: int, rows: Iterable[NewRecipient]) -> int:
    """Insert ``rows`` for a campaign; returns how many. Does not commit (the caller's transaction)."""
    return write_rows(session, _TABLE, COLUMNS, _tuples(campaign_id, rows))


@dataclass(frozen=True)
class AcceptedColumns:
    """An upload's accepted rows as aligned columns, ``row_numbers`` ascending (input order)."""

    row_numbers: Sequence[int]
    mobiles: Sequence[str]
    texts: Sequence[str | None]
    segments: Sequence[int]
    chunk_ids: Sequence[int]


def insert_upload(
    session: Session, campaign_id: int, accepted: AcceptedColumns, rejected: Sequence[NewRecipient]
) -> int:
    """Every input row of an upload, accepted or rejected, with ``position`` = its place in input order.

    ``rejected`` rows (ascending row numbers) are slotted in between the accepted ones; the accepted
    rows between two rejections go out as one C-level ``zip`` of their columns, not a Python object
    per row. Returns how many rows were written. Does not commit.
    """
    if any(a.row_number >= b.row_number for a, b in pairwise(rejected)):
        raise ValueError("rejected rows must come in input order")
    return write_rows(
        session, _TABLE, COLUMNS, chain.from_iterable(_in_input_order(campaign_id, accepted, rejected))
    )


def _in_input_order(
    campaign_id: int, accepted: AcceptedColumns, rejected: Sequence[NewRecipient]
) -> Iterator[Iterable[tuple[Any, ...]]]:
    rows = accepted.row_numbers
    start = position = 0
    for reject in (*rejected, None):
        end = len(rows) if reject is None else bisect_left(rows, reject.row_number, lo=start)
        if end > start:
            yield zip(
                repeat(campaign_id),
                rows[start:end],
                range(position, position + end - start),
                accepted.mobiles[start:end],
                repeat(None),
                accepted.texts[start:end],
                accepted.segments[start:end],
                repeat(None),
                repeat(_PLANNED),
                accepted.chunk_ids[start:end],
            )
            position += end - start
            start = end
        if reject is not None:
            yield _tuples(campaign_id, [reject._replace(position=position)])
            position += 1


def _tuples(campaign_id: int, rows: Iterable[NewRecipient]) -> Iterator[tuple[Any, ...]]:
    # Tuple unpacking rather than attribute access: this may run a million times per upload.
    rejected, planned = RecipientState.REJECTED.value, _PLANNED
    for row_number, position, mobile, raw_value, text, segments, reject_reason, chunk_id in rows:
        state = rejected if reject_reason else planned
        yield (campaign_id, row_number, position, mobile, raw_value, text, segments, reject_reason, state,
               chunk_id)  # fmt: skip


def counts(session: Session, campaign_id: int) -> dict[str, int]:
    """How many recipients of a campaign are in each state (every state present, zeros included)."""
    result = {state.value: 0 for state in RecipientState}
    query = (
        select(Recipient.state, func.count())
        .where(Recipient.campaign_id == campaign_id)
        .group_by(Recipient.state)
    )
    for state, n in session.execute(query):
        result[state] = n
    return result
