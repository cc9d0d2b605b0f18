"""Draining an account's reports or replies: pull until the vendor answers empty, or refuses.

Every non-empty answer is committed to the store (``raw_pulls``) before the next pull and before any
parsing: the pull consumed those records at the vendor, so a crash right after it must lose nothing.

Each call takes a token from the account's rate limiter (:class:`dispatcher.ratelimit.PullLimiter`: the
tokens its sends take; any the sends leave idle, at least a quarter of them while it sends), so a drain
never pushes the sends into "too frequent", never starves them, and takes the account's whole rate once
it is idle (a campaign sent, its reports due). A non-empty answer is pulled again at once; the drain
ends at the first empty answer, and the next beat (every few seconds) drains again. The first error answer ends the drain (the vendor module classifies it):

- "too frequent" (``rate_limited``, or HTTP 429): the account slows down and is not pulled again for
  :data:`DEFER_SECONDS` (recorded in Redis, so every process holds off);
- an account error (bad password, IP not allowed, expired, frozen): a warning in the log, an
  ``account.pull_refused`` audit entry and the account's current error in the store
  (``store.account_errors``: every page shows it, ``reports pull`` prints it), for a person to act on;
  the account is not pulled again for a minute, doubling at each refusal up to half an hour, until a
  pull succeeds or its configuration changes (gateways lock an account after repeated wrong passwords);
- anything else: a warning; the next drain tries again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from redis.exceptions import LockError, RedisError
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import AccountConfig
from dispatcher.errors import DispatcherError, HTTPStatusError
from dispatcher.keys import DEFAULT_KEYS
from dispatcher.results.inbox import record_raw
from dispatcher.results.parsing import pulled_replies, pulled_reports
from dispatcher.store import AccountError, account_errors, audit, drains, utcnow
from dispatcher.vendors import NO_REPORTS
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import CodeInfo, ErrorClass, Request, unwrap

if TYPE_CHECKING:
    from redis.lock import Lock

    from dispatcher.ratelimit import PullLimiter
    from dispatcher.runtime import Runtime

logger = logging.getLogger(__name__)

Kind = Literal["reports", "replies"]
KINDS: tuple[Kind, ...] = ("reports", "replies")
MAX_CALLS = 1000  # 500,000 records per drain at most; the next drain goes on
NO_PULL_VENDORS = frozenset(NO_REPORTS)  # no report or reply method at all
DEFER_SECONDS = 30.0  # no pull of an account for this long after it answered "too frequent"
LIMITER_WAIT = 30.0  # seconds a pull waits for a token; then the drain ends, the next one goes on
# One drain per account at a time. The lock lives as long as its drain: a thread renews it every
# LOCK_RENEW_SECONDS while the drain runs (however long a paced drain or a stalled call takes), and a
# drain whose process was killed leaves it for LOCK_SECONDS at most.
LOCK_SECONDS = 20
LOCK_RENEW_SECONDS = 5.0
SYSTEM = "system"


@dataclass(frozen=True)
class Drained:
    """How a drain ended: ``bodies`` stored, and why it stopped if not at an empty answer."""

    bodies: int = 0
    refused: CodeInfo | None = None  # the vendor's error answer
    unexpected: str = ""  # an answer that is neither records, nor empty, nor a code (an HTML page)
    paced_out: bool = False  # no rate-limit token in time
    lost_lock: bool = False  # the account's drain lock expired: another drain may have started


def pulls(account: AccountConfig) -> bool:
    """Whether the account's reports and replies are pulled (not pushed, and the vendor has them)."""
    return account.vendor not in NO_PULL_VENDORS and not account.push


def build(account: AccountConfig, kind: Kind) -> Request:
    vendor = vendor_module(account.vendor)
    creds = account.credentials()
    if kind == "reports":
        return vendor.build_pull_reports(creds, encrypted=account.encrypted)
    return vendor.build_pull_replies(creds, encrypted=account.encrypted)


def drain(
    sessions: sessionmaker[Session],
    transport: Transport,
    account: AccountConfig,
    kind: Kind,
    *,
    limiter: PullLimiter | None = None,
    max_calls: int = MAX_CALLS,
    limiter_wait: float = LIMITER_WAIT,
    keep_lock: Callable[[], bool] | None = None,
) -> Drained:
    """Pull ``kind`` until an empty answer, committing each body; stops at the first error answer.

    Transport errors propagate (the bodies already stored stay stored). ``keep_lock`` says, before each
    call, whether the account's drain lock is still held; False: it was lost, stop.
    """
    vendor = account.vendor_module()
    request = build(account, kind)
    stored = 0
    for _ in range(max_calls):
        if limiter is not None and not limiter.acquire(timeout=limiter_wait):
            return Drained(stored, paced_out=True)
        if keep_lock is not None and not keep_lock():
            return Drained(stored, lost_lock=True)
        body = transport.send(request).text
        info = vendor.pull_error(body)
        if info is not None:
            return Drained(stored, refused=info)
        value = unwrap(body)
        if not value:
            break  # nothing (webservice also answers "" to a bad password: nothing to keep either)
        if value.startswith("<"):  # an HTML error page or unknown XML: no records, and not a code
            return Drained(stored, unexpected=value[:200])
        with sessions() as session:
            record_raw(session, account.name, kind, "pull", body)
        stored += 1
        if not (pulled_reports if kind == "reports" else pulled_replies)(vendor, body):
            return Drained(stored, unexpected=value[:200])  # kept, but words are no list: pull no more
    return Drained(stored)


@dataclass
class AccountPull:
    """One account's pull: bodies stored per kind, and what a person should know."""

    account: str
    bodies: dict[str, int] = field(default_factory=dict)
    skipped: str = ""  # why nothing was pulled (deferred, another drain running)
    failures: dict[str, str] = field(default_factory=dict)  # kind -> what went wrong
    alert: str = ""  # an account error: a person must act


def pull_account(runtime: Runtime, account: AccountConfig, kinds: Sequence[Kind] = KINDS) -> AccountPull:
    """Drain ``kinds`` of one pulling account, paced by its limiter, honouring and setting its deferral."""
    out = AccountPull(account.name)
    wait = runtime.pulls_deferred(account.name)
    if wait > 0:
        out.skipped = f"deferred {wait:.0f} s more after a 'too frequent' answer"
        return out
    with runtime.sessions() as session:
        in_error = session.get(AccountError, account.name) is not None
        error = account_errors.current(session, account) if in_error else None
    if error is not None and (wait := (error.retry_at - utcnow()).total_seconds()) > 0:
        # Gateways lock an account after repeated wrong passwords: wait, growing, for a fix.
        what = f"{error.kind} pull refused: {error.code} {error.meaning_en} ({error.meaning})"
        out.skipped = f"{what}; next pull in {wait:.0f} s (or once its configuration changes)"
        out.alert = _alert(account, what)
        return out
    lock = None
    if runtime.redis is not None:
        # Not thread-local: the renewing thread holds the same token.
        key = DEFAULT_KEYS.lock_key(f"pull:{account.name}")
        lock = runtime.redis.lock(key, timeout=LOCK_SECONDS, thread_local=False)
        if not lock.acquire(blocking=False):
            out.skipped = "another drain of this account is running"
            return out
    with _Renewing(lock) as renewing:
        _pull_kinds(runtime, account, kinds, renewing.held, out)
    if in_error and not out.alert and any(kind not in out.failures for kind in out.bodies):
        with runtime.sessions() as session:  # a pull went through: the account's error is over
            account_errors.clear(session, account.name)
            session.commit()
        logger.info("account %s: pulls work again", account.name)
    return out


def _alert(account: AccountConfig, what: str) -> str:
    return f"account {account.name}: {what}: check its credentials, IP binding and status"


def _pull_kinds(
    runtime: Runtime,
    account: AccountConfig,
    kinds: Sequence[Kind],
    held: Callable[[], bool] | None,
    out: AccountPull,
) -> None:
    transport = runtime.account(account.name).transport
    limiter = runtime.pull_limiter(account.name)
    for kind in kinds:
        with runtime.sessions() as session:
            began = drains.now(session)
        try:
            drained = drain(runtime.sessions, transport, account, kind, limiter=limiter, keep_lock=held)
        except DispatcherError as exc:
            out.failures[kind] = str(exc)
            logger.warning("pull %s/%s failed: %s", account.name, kind, exc)
            if isinstance(exc, HTTPStatusError) and exc.status_code == 429:
                _back_off(runtime, account, limiter, str(exc))  # HTTP's "too frequent"
                break
            continue
        out.bodies[kind] = drained.bodies
        if drained.refused is not None:
            if _refused(runtime, account, kind, drained.refused, limiter, out):
                break  # the other kind would be refused alike
        elif drained.unexpected:
            out.failures[kind] = f"unexpected answer: {drained.unexpected[:80]!r}"
            logger.warning("pull %s/%s: unexpected answer %.80r", account.name, kind, drained.unexpected)
        elif drained.paced_out:
            out.failures[kind] = "no rate-limit token in time; the next drain goes on"
        elif drained.lost_lock:
            out.failures[kind] = "the drain lock expired; the next drain goes on"
            break
        else:  # complete: every report the vendor had when it began is stored (``unknowns``)
            with runtime.sessions() as session:
                drains.record(session, account.name, kind, began)


class _Renewing:
    """Renews ``lock`` every :data:`LOCK_RENEW_SECONDS` on a thread of its own until the block ends, then
    releases it. ``held`` says whether it is still ours (False once a renewal found it gone)."""

    def __init__(self, lock: Lock | None) -> None:
        self.lock = lock
        self.stop = threading.Event()
        self.lost = threading.Event()
        self.thread = threading.Thread(target=self._renew, name="pull-lock", daemon=True)

    def __enter__(self) -> _Renewing:
        if self.lock is not None:
            self.thread.start()
        return self

    def held(self) -> bool:
        return not self.lost.is_set()

    def _renew(self) -> None:
        assert self.lock is not None
        while not self.stop.wait(LOCK_RENEW_SECONDS):
            try:
                self.lock.reacquire()
            except LockError:
                self.lost.set()
                return
            except RedisError as exc:  # Redis away for a moment: the next renewal tries again
                logger.warning("pull lock: renewal failed: %r", exc)

    def __exit__(self, *exc: object) -> None:
        if self.lock is None:
            return
        self.stop.set()
        self.thread.join()
        # Expired while Redis was away, or Redis away now: it expires by itself within LOCK_SECONDS.
        with contextlib.suppress(LockError, RedisError):
            self.lock.release()


def _refused(
    runtime: Runtime,
    account: AccountConfig,
    kind: Kind,
    info: CodeInfo,
    limiter: PullLimiter | None,
    out: AccountPull,
) -> bool:
    """Act on a pull's error answer; True when the account's other pulls must stop too."""
    what = f"{kind} pull refused: {info.code} {info.meaning_en} ({info.meaning})"
    out.failures[kind] = what
    if info.error_class is ErrorClass.RATE_LIMITED:
        _back_off(runtime, account, limiter, what)
        return True
    if info.error_class is ErrorClass.ACCOUNT:
        out.alert = _alert(account, what)
        with runtime.sessions() as session:
            error = account_errors.record(session, account, kind, info.code, info.meaning, info.meaning_en)
            audit(session, SYSTEM, "account.pull_refused", account=account.name, kind=kind,
                  code=info.code, meaning=info.meaning_en)  # fmt: skip
            session.commit()
        logger.warning("%s; refused %d time(s) in a row: no pull for %.0f s", out.alert, error.failures,
                       account_errors.delay(error.failures))  # fmt: skip
        return True
    logger.warning("account %s: %s", account.name, what)
    return False


def _back_off(runtime: Runtime, account: AccountConfig, limiter: PullLimiter | None, what: str) -> None:
    """The vendor said "too frequent": no pull of the account for a while, and the whole account slows."""
    runtime.defer_pulls(account.name, DEFER_SECONDS)
    if limiter is not None:
        limiter.penalise()
    logger.warning("account %s: %s; no pull for %.0f s", account.name, what, DEFER_SECONDS)
