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

A part of a body that is no record (no number first, no time at its end) is returned, with everything
after it, as a reject for the inbox to set aside with the body: never silently dropped, never guessed at.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from dispatcher.vendors.wire import parse_china_time

# A number as the gateways write it (+86 allowed), then the field separator: where a record starts.
_NUMBER = r"\s*(\+?[0-9]{5,20})\s*"
_BLANK_TO_END = re.compile(r"\s*\Z")
_TIME_SHAPE = re.compile(r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}[ T][0-9]{1,2}:[0-9]{1,2}(?::[0-9]{1,2})?")
_MAX_FIELD = 80  # a time, a channel or a customer id is far shorter
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


def _tail_at(value: str, start: int, end: int, fmt: MoFormat) -> tuple[str, str, tuple[str, ...]] | None:
    """``(text, time, trailing fields)`` when ``value[start:end]`` (a record after its number) ends with a
    time and one of the format's tails; the text is what is left, whatever it holds. Only the short
    fields at the end are looked at, so a long body costs no more than its length."""
    sep = fmt.field_sep
    for shapes in fmt.tails:
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


def split(value: str, fmt: MoFormat) -> tuple[list[MoRecord], list[str]]:
    """The records of a reply list, and what follows the first part that is none (see the module's
    notes). Nothing after such a part is read: where the next record starts could only be guessed, and a
    guess could land inside a text and read it as records."""
    start_re = re.compile(_NUMBER + re.escape(fmt.field_sep))
    ends = [(m.start(), m.end()) for m in fmt.record_sep.finditer(value)] + [(len(value), len(value))]
    starts = [end for end, _ in ends]
    records: list[MoRecord] = []
    pos = 0

    def starts_record(at: int) -> bool:
        return _BLANK_TO_END.match(value, at) is not None or start_re.match(value, at) is not None

    while _BLANK_TO_END.match(value, pos) is None:
        head = start_re.match(value, pos)
        found = None
        if head is not None:
            for end, after in ends[bisect_left(starts, head.end()) :]:
                if not starts_record(after):
                    continue
                read = _tail_at(value, head.end(), end, fmt)
                if read is not None:
                    found = (MoRecord(head.group(1), *read), after)
                    break
        if found is None:
            return records, [value[pos:].strip()]
        records.append(found[0])
        pos = found[1]
    return records, []
