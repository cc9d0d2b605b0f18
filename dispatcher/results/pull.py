"""Draining an account's reports or replies: pull until the vendor answers empty.

Every non-empty answer is committed to the store (``raw_pulls``) before the next pull and before any
parsing: the pull consumed those records at the vendor, so a crash right after it must lose nothing.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import AccountConfig
from dispatcher.errors import DispatcherError
from dispatcher.results.inbox import record_raw
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import Request, unwrap

MAX_CALLS = 1000  # 500,000 records per drain at most; the next drain goes on
NO_PULL_VENDORS = frozenset({"entinfo"})  # no report or reply method at all


class PullError(DispatcherError):
    """The vendor refused a pull (bad password, too frequent ...): ``code`` and its meaning."""


def pulls(account: AccountConfig) -> bool:
    """Whether the account's reports and replies are pulled (not pushed, and the vendor has them)."""
    return account.vendor not in NO_PULL_VENDORS and not account.push


def build(account: AccountConfig, kind: Literal["reports", "replies"]) -> Request:
    vendor = vendor_module(account.vendor)
    creds = account.credentials()
    if kind == "reports":
        return vendor.build_pull_reports(creds, encrypted=account.encrypted)
    return vendor.build_pull_replies(creds, encrypted=account.encrypted)


def drain(
    sessions: sessionmaker[Session],
    transport: Transport,
    account: AccountConfig,
    kind: Literal["reports", "replies"],
    *,
    max_calls: int = MAX_CALLS,
) -> int:
    """Pull ``kind`` until an empty answer, committing each body; returns how many bodies were stored.

    ``PullError`` when the vendor answers an error code; transport errors propagate (the bodies
    already stored stay stored).
    """
    vendor = vendor_module(account.vendor)
    request = build(account, kind)
    stored = 0
    for _ in range(max_calls):
        body = transport.send(request).text
        check = getattr(vendor, "pull_error", None)
        info = check(body) if check is not None else None
        if info is not None:
            raise PullError(f"{account.name}: {kind} pull refused: {info.code} {info.meaning_en}")
        if not unwrap(body):
            break  # nothing (webservice also answers "" to a bad password: nothing to keep either)
        with sessions() as session:
            record_raw(session, account.name, kind, "pull", body)
        stored += 1
    return stored
