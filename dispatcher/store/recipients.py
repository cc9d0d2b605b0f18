"""Recipients in bulk: one row per input row, written fast enough for a million-row upload."""

from __future__ import annotations

import json
import operator
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, compress, pairwise, repeat
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.orm import Session

from dispatcher.store.bulk import write_rows
from dispatcher.store.models import Chunk, Recipient
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
    "reject_code",
    "reject_params",
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
    reject_code: str | None = None  # the reason as data (``dispatcher.reasons``)
    reject_params: dict[str, Any] | None = None


def bulk_insert_recipients(session: Session, campaign_id: int, rows: Iterable[NewRecipient]) -> int:
    """Insert ``rows`` for a campaign; returns how many. Does not commit (the caller's transaction)."""
    return write_rows(session, _TABLE, COLUMNS, _tuples(campaign_id, rows))


@dataclass(frozen=True)
class AcceptedColumns:
    """An upload's accepted rows as aligned columns, ``row_numbers`` ascending (input order).

    ``text_in_chunk[i]`` says the row's chunk carries its text (a same-text or single request, whose
    ``chunks.text`` is what goes to each of its numbers): the row then stores no text of its own.
    """

    row_numbers: Sequence[int]
    mobiles: Sequence[str]
    texts: Sequence[str]
    segments: Sequence[int]
    chunk_ids: Sequence[int]
    text_in_chunk: Sequence[bool]


_WITH_TEXT = ("campaign_id", "row_number", "position", "mobile", "text", "segments", "state", "chunk_id")
_WITHOUT_TEXT = ("campaign_id", "row_number", "position", "mobile", "segments", "state", "chunk_id")


def insert_upload(
    session: Session, campaign_id: int, accepted: AcceptedColumns, rejected: Sequence[NewRecipient]
) -> int:
    """Every input row of an upload, accepted or rejected, with ``position`` = its place in input order.

    Written in passes of one shape each, every one a C-level ``zip`` of the columns (no Python object
    per row): the accepted rows that keep their text, those whose chunk carries it, then the rejected
    ones. A pass names only the columns it has values for: a NULL parameter costs the SQLite driver
    more than a text does. ``rejected`` must be in input order. Returns how many rows were written.
    Does not commit.
    """
    a, rows = accepted, accepted.row_numbers
    columns = (a.mobiles, a.texts, a.segments, a.chunk_ids, a.text_in_chunk)
    if any(len(column) != len(rows) for column in columns):
        raise ValueError("the accepted columns differ in length")
    # Equal row numbers: a cell of two numbers sent to each (``--each-number``) may lose both.
    if any(r.row_number > s.row_number for r, s in pairwise(rejected)):
        raise ValueError("rejected rows must come in input order")
    in_chunk = a.text_in_chunk
    written = 0
    if not all(in_chunk):
        with_text = zip(
            repeat(campaign_id),
            rows,
            _positions(rows, rejected),
            a.mobiles,
            a.texts,
            a.segments,
            repeat(_PLANNED),
            a.chunk_ids,
            strict=False,  # repeat() is endless; the columns were checked above
        )
        kept = compress(with_text, map(operator.not_, in_chunk)) if any(in_chunk) else with_text
        written += write_rows(session, _TABLE, _WITH_TEXT, kept)
    if any(in_chunk):
        without_text = zip(
            repeat(campaign_id),
            rows,
            _positions(rows, rejected),
            a.mobiles,
            a.segments,
            repeat(_PLANNED),
            a.chunk_ids,
            strict=False,  # repeat() is endless; the columns were checked above
        )
        written += write_rows(session, _TABLE, _WITHOUT_TEXT, compress(without_text, in_chunk))
    placed = (r._replace(position=i + bisect_left(rows, r.row_number)) for i, r in enumerate(rejected))
    return written + write_rows(session, _TABLE, COLUMNS, _tuples(campaign_id, placed))


def _positions(rows: Sequence[int], rejected: Sequence[NewRecipient]) -> Iterator[int]:
    """The position of each accepted row: the accepted rows between two rejected ones take a run of
    consecutive positions (a ``range``), the rejected row the one in between."""
    runs: list[range] = []
    start = position = 0
    for reject in rejected:
        end = bisect_left(rows, reject.row_number, lo=start)
        runs.append(range(position, position + end - start))
        position += end - start + 1
        start = end
    runs.append(range(position, position + len(rows) - start))
    return chain.from_iterable(runs)


def recipient_text() -> ColumnElement[str | None]:
    """The text a recipient is sent: its own, or (NULL there) its chunk's, for a chunk that carries one
    text for all its numbers. Select it with an outer join of ``Chunk`` on ``Recipient.chunk_id``."""
    return func.coalesce(Recipient.text, Chunk.text)


def _tuples(campaign_id: int, rows: Iterable[NewRecipient]) -> Iterator[tuple[Any, ...]]:
    # Tuple unpacking rather than attribute access: this may run a million times per upload.
    rejected, planned = RecipientState.REJECTED.value, _PLANNED
    for row_number, position, mobile, raw_value, text, segments, reason, chunk_id, code, details in rows:
        state = rejected if reason else planned
        yield (campaign_id, row_number, position, mobile, raw_value, text, segments, reason, state,
               chunk_id, code, _json(details))  # fmt: skip


def _json(params: dict[str, Any] | None) -> str | None:
    # What SQLAlchemy's JSON type writes, for the driver-level paths (COPY, raw INSERT) that bypass it.
    return None if params is None else json.dumps(params, ensure_ascii=False)


def counts_and_segments(session: Session, campaign_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """:func:`counts`, and the segments of each state's recipients, in one pass over the campaign's
    ``(campaign_id, state, segments)`` index (a million recipients: one pass, not two)."""
    result = {state.value: 0 for state in RecipientState}
    segments = {state.value: 0 for state in RecipientState}
    query = (
        select(Recipient.state, func.count(), func.sum(Recipient.segments))
        .where(Recipient.campaign_id == campaign_id)
        .group_by(Recipient.state)
    )
    for state, n, total in session.execute(query):
        result[state], segments[state] = n, int(total or 0)
    return result, segments


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
