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
    value = unwrap(body)
    if value.startswith("<"):
        return [_from_report(r) for r in vendor.parse_reports(body)]
    with_ref = vendor.NAME in _REF_VENDORS
    body_re, record_re = _BODY_PATTERNS[with_ref]
    if body_re.fullmatch(value):
        t = _time
        if with_ref:
            return [
                ReportRecord(b, m, s, t(at) if at else None, ref or None)
                for b, m, at, s, ref in record_re.findall(value)
            ]
        return [
            ReportRecord(b, m, s, t(at) if at else None, None) for b, m, at, s in record_re.findall(value)
        ]
    fullmatch = _FAST_REPORT.fullmatch
    out: list[ReportRecord] = []
    append = out.append
    for record in value.split("|"):
        m = fullmatch(record)
        if m is not None and (with_ref or m.group(5) is None):
            batch, mobile, at, status, ref = m.groups()
            append(ReportRecord(batch, mobile, status, _time(at) if at else None, ref or None))
        elif record.strip():
            out.extend(_from_report(r) for r in vendor.parse_reports(record))
    return out


def pushed_reports(vendor: VendorModule, body: str) -> tuple[str, list[ReportRecord]]:
    account, reports = vendor.parse_push_reports(body.encode("utf-8"), push_content_type(body))
    return account, [_from_report(r) for r in reports]


class ReplyRecord(NamedTuple):
    mobile: str
    text: str
    at: datetime | None
    channel: str | None
    ref: str | None


def _from_reply(reply: Reply) -> ReplyRecord:
    return ReplyRecord(_mobile(reply.mobile), reply.text, reply.at, reply.channel or None, reply.ref or None)


def pulled_replies(vendor: VendorModule, body: str) -> list[ReplyRecord]:
    return [_from_reply(r) for r in vendor.parse_replies(body)]


def pushed_replies(vendor: VendorModule, body: str) -> tuple[str, list[ReplyRecord]]:
    account, replies = vendor.parse_push_replies(body.encode("utf-8"), push_content_type(body))
    return account, [_from_reply(r) for r in replies]


def push_content_type(body: str) -> str:
    """A stored push body is either trigger's JSON or a form; its text says which."""
    if body.lstrip().startswith(("{", "[")):
        return "application/json"
    return "application/x-www-form-urlencoded; charset=utf-8"
