"""Reply (MO) lists read so that a reply's text can never become a record or a field of its own.

The gateways join ``phone<F>text<F>time[<F>more]<R>`` records without escaping anything, and the text
is whatever the person typed: ``好的|;|13900000002|,|TD`` sent from 13900000001 holds both separators.
Splitting the whole body on ``<R>`` and then each record on ``<F>`` reads that as a second reply "TD"
from 13900000002 (an opt-out of someone else). So a record is read from its ends, as each format fixes
them: it starts with a number and ``<F>``; it ends with a time and exactly the format's trailing fields
(none, the channel, the customer id; each of a fixed shape, none holding a separator), then ``<R>`` or
the end of the body, and the next record starts with a number and ``<F>`` again. The text is everything
between: it takes the rest, separators included. A record boundary is the first place where all of that
holds; a text can only fake one by spelling out a whole record's tail (a time in the gateway's format,
the trailing fields, the separator, a number), and it then still keeps the real record's own tail.

So a boundary inside a body must also look exactly like the one the gateway wrote last (the body's
final record tail, which no text can forge: nothing follows it): the same number of trailing fields
and the same time layout (``2026-12-08 09:05:03`` against ``2026/12/08 9:05``), and a time within
:data:`RETENTION` of the body's last record (the gateways keep replies 2-3 days; a list never spans
more). A forgery
must then guess the layout, the trailing fields and a plausible time; what still gets through can opt
out only a number the account sent to (``dispatcher.results.inbox``).

A part of a body that is no record (no number first, no time at its end) is returned, with everything
after it, as a reject for the inbox to set aside with the body: never silently dropped, never guessed at.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dispatcher.vendors.wire import parse_china_time

# A number as the gateways write it (+86 allowed), then the field separator: where a record starts.
_NUMBER = r"\s*(\+?[0-9]{5,20})\s*"
_BLANK_TO_END = re.compile(r"\s*\Z")
_TIME_SHAPE = re.compile(r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}[ T][0-9]{1,2}:[0-9]{1,2}(?::[0-9]{1,2})?")
_MAX_FIELD = 80  # a time, a channel or a customer id is far shorter
# How far from now a record's time may be for a boundary inside a body: the gateways keep replies 2-3
# days, and a gateway's clock or time zone may be hours off.
RETENTION = timedelta(hours=72)
_DIGITS = re.compile(r"[0-9]+")
# Trailing fields: a channel / show number is digits; a customer id is the client's own reference.
CHANNEL = re.compile(r"[0-9]{0,32}")
CUSTOMER_ID = re.compile(r"[0-9A-Za-z_.:\-]{0,60}")


@dataclass(frozen=True)
class MoFormat:
    """One list format: its separators and the shapes of the fields after the time, per method (a body
    may hold any of ``tails``, most fields first)."""

    field_sep: str
    record_sep: re.Pattern[str]
    tails: Sequence[tuple[re.Pattern[str], ...]]


@dataclass(frozen=True)
class MoRecord:
    mobile: str
    text: str
    time: str
    tail: tuple[str, ...]


def _norm(value: str) -> str:
    # The documents' examples wrap and pad fields ("2014/06/10\n15:34:11", " UNDELIVRD ").
    return " ".join(value.split())


def is_time(value: str) -> bool:
    """A time as the gateways write one (bare digits are numbers and ids, never a time here)."""
    # The shapes parse_china_time reads (epoch digits aside), checked first: strptime is slow.
    return _TIME_SHAPE.fullmatch(value) is not None and parse_china_time(value) is not None


def _tail_at(
    value: str, start: int, end: int, fmt: MoFormat, tails: Sequence[tuple[re.Pattern[str], ...]]
) -> tuple[str, str, tuple[str, ...]] | None:
    """``(text, time, trailing fields)`` when ``value[start:end]`` (a record after its number) ends with a
    time and one of the format's tails; the text is what is left, whatever it holds. Only the short
    fields at the end are looked at, so a long body costs no more than its length."""
    sep = fmt.field_sep
    for shapes in tails:
        cuts: list[int] = []
        right = end
        for _ in range(len(shapes) + 1):
            cut = value.rfind(sep, max(start, right - _MAX_FIELD - len(sep)), right)
            if cut < 0:
                break
            cuts.append(cut)
            right = cut
        if len(cuts) != len(shapes) + 1:
            continue
        bounds = [end, *cuts]
        fields = [_norm(value[cuts[j] + len(sep) : bounds[j]]) for j in range(len(cuts))][::-1]
        when, tail = fields[0], tuple(fields[1:])
        if is_time(when) and all(s.fullmatch(v) for s, v in zip(shapes, tail, strict=True)):
            return value[start : cuts[-1]].strip(), when, tail
    return None


def _layout(when: str) -> str:
    """A time's layout: its separators, each run of digits one ``9`` (padded or not, the same)."""
    return _DIGITS.sub("9", when)


@dataclass(frozen=True)
class _Shape:
    """The tail the gateway wrote last: its trailing fields' shapes and its time's layout."""

    tails: tuple[tuple[re.Pattern[str], ...], ...]
    layout: str | None
    at: datetime | None = None  # its time


def _final_shape(value: str, fmt: MoFormat, ends: list[tuple[int, int]]) -> _Shape:
    """The shape of the body's final record tail (the last record end with only blanks after it).
    When it cannot be read, any of the format's tails (the last record is then set aside anyway)."""
    for end, after in reversed(ends):
        if _BLANK_TO_END.match(value, after) is None:
            break
        for shapes in fmt.tails:
            read = _tail_at(value, 0, end, fmt, (shapes,))
            if read is not None:
                return _Shape((shapes,), _layout(read[1]), parse_china_time(read[1]))
    return _Shape(tuple(fmt.tails), None)


def split(value: str, fmt: MoFormat, now: datetime | None = None) -> tuple[list[MoRecord], list[str]]:
    """The records of a reply list, and what follows the first part that is none (see the module's
    notes); ``now`` is when the list was received. Nothing after such a part is read: where the next
    record starts could only be guessed, and a guess could land inside a text and read it as records."""
    start_re = re.compile(_NUMBER + re.escape(fmt.field_sep))
    ends = [(m.start(), m.end()) for m in fmt.record_sep.finditer(value)] + [(len(value), len(value))]
    starts = [end for end, _ in ends]
    final = _final_shape(value, fmt, ends)
    now = now or datetime.now(UTC)
    records: list[MoRecord] = []
    pos = 0

    def boundary(after: int) -> bool | None:
        """True at the body's end, False where a next record starts, None where none does."""
        if _BLANK_TO_END.match(value, after) is not None:
            return True
        return False if start_re.match(value, after) is not None else None

    # Inner records are near the last one in time (which no text can forge): a backlog delivered days
    # late keeps its boundaries.
    reference = final.at if final.at is not None else now

    def plausible(when: str) -> bool:
        at = parse_china_time(when)
        layout = final.layout is None or _layout(when) == final.layout
        return layout and at is not None and abs(at - reference) <= RETENTION

    while _BLANK_TO_END.match(value, pos) is None:
        head = start_re.match(value, pos)
        found = None
        if head is not None:
            for end, after in ends[bisect_left(starts, head.end()) :]:
                last = boundary(after)
                if last is None:
                    continue
                read = _tail_at(value, head.end(), end, fmt, final.tails)
                # Inside the body a boundary must look like the gateway's own last one (see above).
                if read is not None and (last or plausible(read[1])):
                    found = (MoRecord(head.group(1), *read), after)
                    break
        if found is None:
            return records, [value[pos:].strip()]
        records.append(found[0])
        pos = found[1]
    return records, []
