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

A part of a body that is no record (no number first, no time at its end) is returned as a reject, for
the inbox to set aside with the body: never silently dropped, and never guessed at.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from dispatcher.vendors.wire import is_digits, parse_china_time

# A number as the gateways write it (+86 allowed), then the field separator: where a record starts.
_NUMBER = r"\s*(\+?[0-9]{5,20})\s*"
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
    return not is_digits(value) and parse_china_time(value) is not None


def _tail_of(segment: str, fmt: MoFormat) -> tuple[str, str, tuple[str, ...]] | None:
    """``(text, time, trailing fields)`` when ``segment`` (a record after its number) ends with a time
    and one of the format's tails; the text is what is left, whatever it holds."""
    for shapes in fmt.tails:
        parts = segment.rsplit(fmt.field_sep, len(shapes) + 1)
        if len(parts) != len(shapes) + 2:
            continue
        text, when, *rest = parts
        tail = tuple(_norm(p) for p in rest)
        if is_time(_norm(when)) and all(s.fullmatch(v) for s, v in zip(shapes, tail, strict=True)):
            return text.strip(), _norm(when), tail
    return None


def split(value: str, fmt: MoFormat) -> tuple[list[MoRecord], list[str]]:
    """The records of a reply list, and the parts of it that are none (see the module's notes)."""
    start_re = re.compile(_NUMBER + re.escape(fmt.field_sep))
    ends = [(m.start(), m.end()) for m in fmt.record_sep.finditer(value)] + [(len(value), len(value))]
    starts = [end for end, _ in ends]
    records: list[MoRecord] = []
    rejects: list[str] = []
    pos = 0

    def starts_record(at: int) -> bool:
        return not value[at:].strip() or start_re.match(value, at) is not None

    while value[pos:].strip():
        head = start_re.match(value, pos)
        found = None
        if head is not None:
            for end, after in ends[bisect_left(starts, head.end()) :]:
                if not starts_record(after):
                    continue
                read = _tail_of(value[head.end() : end], fmt)
                if read is not None:
                    found = (MoRecord(head.group(1), *read), after)
                    break
        if found is None:
            # No record here: set aside up to the next place a record starts, and go on from there.
            later = ends[bisect_left(starts, pos + 1) :]
            nxt = next((a for _, a in later if a < len(value) and starts_record(a)), len(value))
            rejects.append(value[pos:nxt].strip())
            pos = nxt
            continue
        records.append(found[0])
        pos = found[1]
    return records, rejects
