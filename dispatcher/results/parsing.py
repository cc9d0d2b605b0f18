"""Raw pulled/pushed bodies into rows for the ``reports`` and ``replies`` tables.

Reports come by the million, and the vendors' lenient parsers cost ~50 µs a record (shape sniffing,
``strptime`` per field). Records of the exact common shapes (``batch,mobile,time,status[,ref]`` and
``batch,mobile,status[,ref]`` with an 11-digit mobile) take a strict regex and a cached time instead;
everything else goes through the vendor's own parser, so no record is read differently.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from dispatcher.contacts.phones import normalise
from dispatcher.vendors.registry import VendorModule
from dispatcher.vendors.wire import Reply, Report, parse_china_time, unwrap

# batch, mobile, [time,] status[, ref]: the shapes GetReport(2) and trigger's *Connect answer.
_RECORD = (
    r"\s*([0-9]{1,25}),(1[3-9][0-9]{9}),(?:([0-9]{4}[/-][0-9]{2}[/-][0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}),)?"
    r"([A-Za-z][A-Za-z0-9_:.\-]{0,31})"
)
_REF = r"(?:,([0-9]{0,60}))?"
_FAST_REPORT = re.compile(_RECORD + _REF + r"\s*")
_REF_VENDORS = frozenset({"trigger"})  # only trigger reports carry a customerUuid last
# A whole body of such records (none of them can hold a "|"), the last one optionally blank: then
# one findall reads all of them, each exactly as ``_FAST_REPORT.fullmatch`` reads it on its own.
_BODY_PATTERNS = {
    with_ref: (
        re.compile(rf"(?:{record}\|)*(?:{record}|\s*)"),
        re.compile(rf"{record}(?:\||\Z)"),
    )
    for with_ref, record in ((True, _RECORD + _REF + r"\s*"), (False, _RECORD + r"\s*"))
}


class ReportRecord(NamedTuple):
    batch_id: str | None
    mobile: str
    status: str
    at: datetime | None
    ref: str | None


@lru_cache(maxsize=4096)
def _time(value: str) -> datetime | None:
    return parse_china_time(value)  # a pull's 500 records share a handful of seconds


def _mobile(value: str) -> str:
    # Reports may write +86/86 prefixes; recipients hold the normalised 11 digits.
    return normalise(value) or value.strip()


def _from_report(report: Report) -> ReportRecord:
    return ReportRecord(
        report.batch_id or None, _mobile(report.mobile), report.status, report.at, report.ref or None
    )


def pulled_reports(vendor: VendorModule, body: str) -> list[ReportRecord]:
    """The records of a pulled report list, through the fast path where the shape is certain."""
    return _pulled_reports(vendor, body)[0]


def _pulled_reports(vendor: VendorModule, body: str) -> tuple[list[ReportRecord], list[str]]:
    """The records (each checked against the store's columns unless the fast path's shapes already are
    within them), in the body's order, and what was set aside."""
    value = unwrap(body)
    if value.startswith("<"):
        return _checked_reports([_from_report(r) for r in vendor.parse_reports(body)], [])
    with_ref = vendor.NAME in _REF_VENDORS
    body_re, record_re = _BODY_PATTERNS[with_ref]
    if body_re.fullmatch(value):
        t = _time
        if with_ref:
            return [
                ReportRecord(b, m, s, t(at) if at else None, ref or None)
                for b, m, at, s, ref in record_re.findall(value)
            ], []
        return [
            ReportRecord(b, m, s, t(at) if at else None, None) for b, m, at, s in record_re.findall(value)
        ], []
    fullmatch = _FAST_REPORT.fullmatch
    out: list[ReportRecord] = []
    rejects: list[str] = []
    append = out.append
    for record in value.split("|"):
        m = fullmatch(record)
        if m is not None and (with_ref or m.group(5) is None):
            batch, mobile, at, status, ref = m.groups()
            append(ReportRecord(batch, mobile, status, _time(at) if at else None, ref or None))
        elif record.strip():
            read = [_from_report(r) for r in vendor.parse_reports(record)]
            out.extend(_checked_reports(read, rejects)[0])
            if not read:
                rejects.append(record.strip())
    return out, rejects


def _checked_reports(found: list[ReportRecord], rejects: list[str]) -> tuple[list[ReportRecord], list[str]]:
    """``found`` less what the store cannot hold, which is added to ``rejects``."""
    good = []
    for record in found:
        problem = _report_problem(record)
        if problem is None:
            good.append(record)
        else:
            rejects.append(_describe(problem, record))
    return good, rejects


class ReplyRecord(NamedTuple):
    mobile: str
    text: str
    at: datetime | None
    channel: str | None
    ref: str | None


def storable(text: str) -> str:
    """``text`` as every store holds it: no NUL (PostgreSQL's text has none), no lone surrogate (a
    JSON push's "\ud800" cannot be encoded): one such character would fail its whole batch."""
    text = text.replace("\x00", "\ufffd")
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def _from_reply(reply: Reply) -> ReplyRecord:
    text = storable(reply.text)
    return ReplyRecord(_mobile(reply.mobile), text, reply.at, reply.channel or None, reply.ref or None)


def pulled_replies(vendor: VendorModule, body: str) -> list[ReplyRecord]:
    return [_from_reply(r) for r in vendor.parse_replies(body)]


# What the store's columns hold (dispatcher.store.models: reports and replies). A record outside them
# is set aside at parse time: on PostgreSQL it would fail its whole batch, and the same batch again at
# every run, so no later body of any account would be processed.
_MOBILE = re.compile(r"\+?[0-9]{5,19}")  # at most 20 characters: the columns' width
_BATCH = re.compile(r"[^\x00-\x1f\x7f]{1,32}")
_STATUS = re.compile(r"[^\x00-\x1f\x7f]{1,32}")
_CUSTOMER_ID = re.compile(r"[^\x00-\x1f\x7f]{1,60}")
_CHANNEL = re.compile(r"[^\x00-\x1f\x7f]{1,32}")


def _report_problem(r: ReportRecord) -> str | None:
    if not _MOBILE.fullmatch(r.mobile):
        return "mobile"
    if r.batch_id is not None and not _BATCH.fullmatch(r.batch_id):
        return "batch id"
    if not _STATUS.fullmatch(r.status):
        return "status"
    if r.ref is not None and not _CUSTOMER_ID.fullmatch(r.ref):
        return "customer id"
    return None


def _reply_problem(r: ReplyRecord) -> str | None:
    if not _MOBILE.fullmatch(r.mobile):
        return "mobile"
    if r.channel is not None and not _CHANNEL.fullmatch(r.channel):
        return "channel"
    if r.ref is not None and not _CUSTOMER_ID.fullmatch(r.ref):
        return "customer id"
    return None


def _describe(problem: str, record: ReportRecord | ReplyRecord) -> str:
    fields = ", ".join(repr(v)[:70] for v in record if isinstance(v, str))
    return f"{problem} the store cannot hold: {fields}"


class Parsed(NamedTuple):
    """A body's records the store can hold, and what was set aside (each named with its problem)."""

    reports: list[ReportRecord]
    replies: list[ReplyRecord]
    rejects: list[str]


def read(
    vendor: VendorModule,
    kind: str,
    source: str,
    body: str,
    received_at: datetime | None = None,
    charset: str | None = None,
) -> Parsed:
    """A stored body's records, checked against the store's columns. ``ValueError`` when the body as a
    whole is none of the vendor's formats (a push that is neither its form nor its JSON). A reply list
    is read as of ``received_at`` (``dispatcher.vendors.mo``: how far a record's time may be from it); a
    push in the ``charset`` it came in (None: UTF-8), its bytes as they came."""
    rejects: list[str] = []
    data = body.encode(charset or "utf-8", errors="replace")
    if kind == "reports":
        if source == "pull":
            good, rejects = _pulled_reports(vendor, body)
        else:
            _, pushed, rejects = vendor.parse_push_reports_with_rejects(
                data, push_content_type(body, charset)
            )
            good, rejects = _checked_reports([_from_report(r) for r in pushed], rejects)
        return Parsed(good, [], [_cut(r) for r in rejects])
    if source == "pull":
        replies, rejects = vendor.parse_replies_with_rejects(body, received_at)
    else:
        _, replies, rejects = vendor.parse_push_replies_with_rejects(
            data, push_content_type(body, charset), received_at
        )
    records = [_from_reply(r) for r in replies]
    good_replies = [r for r in records if _reply_problem(r) is None]
    rejects += [_describe(p, r) for r in records if (p := _reply_problem(r)) is not None]
    return Parsed([], good_replies, [_cut(r) for r in rejects])


def _cut(value: str) -> str:
    return value if len(value) <= 200 else value[:200] + "…"


def push_content_type(body: str, charset: str | None = None) -> str:
    """A stored push body is either trigger's JSON or a form; its text says which. ``charset``: the one
    it came in, declared again (none: UTF-8, or GB18030 for %-escapes UTF-8 cannot read)."""
    declared = f"; charset={charset}" if charset else ""
    if body.lstrip().startswith(("{", "[")):
        return "application/json" + declared
    return "application/x-www-form-urlencoded" + declared
