"""The inbox of raw report and reply bodies: committed first, parsed and reconciled afterwards.

A pull consumes the records at the vendor, and a push is answered only once stored, so the raw body
is committed before anything else happens to it (:func:`record_raw`). :func:`process_pending` then
turns pending bodies into report and reply rows, reconciles the reports and applies opt-outs. Each
batch of bodies is claimed by a conditional ``UPDATE ... WHERE parsed_at IS NULL`` inside the very
transaction that stores its rows: concurrent processors never take the same body, and a crash
mid-batch rolls the claim back, leaving the bodies pending for the next run.

On PostgreSQL :data:`CONNECTIONS` threads drain the inbox at once, each a batch at a time on its own
connection: the server's work on one batch (matching, writing, updating recipients: most of the time)
runs beside another's, and the batches still pending are claimed ``FOR UPDATE SKIP LOCKED``, so no
claim waits for another transaction. Which of two batches commits first does not matter: a
recipient keeps the report of the latest body (``reconcile._not_older``). SQLite has one writer.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal

from redis.exceptions import RedisError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import Settings
from dispatcher.errors import ConfigError, UnsupportedMethodError
from dispatcher.results import optout_store, parsing, replies
from dispatcher.results.optout_words import is_optout, optout_matcher
from dispatcher.results.reconcile import reconcile, reconcile_staged, unmatched_ids
from dispatcher.results.rows import Body, insert_replies, open_stage, stage_bodies
from dispatcher.store import RawPull, ReportRow, utcnow
from dispatcher.vendors.registry import get as vendor_module

logger = logging.getLogger(__name__)
# PostgreSQL's deadlock and serialization failures: the transaction was rolled back, claim included,
# and the same bodies are pending again. Two batches that opt out the same numbers in crossed order
# (two connections here, or two processes) can deadlock; one of them simply goes again.
_TRY_AGAIN = frozenset({"40P01", "40001"})

Kind = Literal["reports", "replies"]
Source = Literal["pull", "push"]
BATCH = 20  # bodies per transaction: up to 10,000 pulled reports
# Connections processing the inbox at once on PostgreSQL: 2 measured 1.6x one on a 2-core machine, 3
# slower than 2 (BENCHMARKS.md, "Reconcile, fourth round"); a server with more cores takes more.
CONNECTIONS = 2


@dataclass
class ProcessStats:
    bodies: int = 0
    errors: int = 0
    reports: int = 0
    replies: int = 0
    matched: int = 0
    settled_chunks: int = 0
    optouts: int = 0

    def __iadd__(self, other: ProcessStats) -> ProcessStats:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


def record_raw(
    session: Session, account: str, kind: Kind, source: Source, body: str, *, charset: str | None = None
) -> int:
    """Store a pulled or pushed body as it came, and COMMIT; returns its id. ``charset``: a push's, when
    not UTF-8 (``wire.decode_push``): its form's %-escapes are read in it."""
    body = parsing.storable(body)  # no NUL, no lone surrogate: nothing else is changed
    raw_id = session.execute(
        insert(RawPull)
        .values(account=account, kind=kind, source=source, body=body, received_at=utcnow(), charset=charset)
        .returning(RawPull.id)
    ).scalar_one()
    session.commit()
    return int(raw_id)


def process_pending(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    batch: int = BATCH,
    now: datetime | None = None,
    connections: int | None = None,
) -> ProcessStats:
    """Parse, store and reconcile every pending body, batch by batch, on ``connections`` connections
    at once (default: :data:`CONNECTIONS` on PostgreSQL, one on SQLite); then retry earlier unmatched
    reports (a report may arrive before its batch id is recorded), those of the last
    ``reconcile.REMATCH_WINDOW`` only. Idempotent; safe concurrently."""
    stats = ProcessStats()
    words = optout_matcher(settings.optout_words)
    if connections is None:
        with sessions() as session:
            connections = CONNECTIONS if session.get_bind().dialect.name == "postgresql" else 1
    if connections <= 1:
        stats += _drain(sessions, settings, batch, now, words, threading.Event())
    else:
        stop = threading.Event()  # an error anywhere stops the other threads after their batch
        with ThreadPoolExecutor(connections, thread_name_prefix="inbox") as pool:
            runs = [
                pool.submit(_drain, sessions, settings, batch, now, words, stop) for _ in range(connections)
            ]
            try:
                errors = [run.exception() for run in runs]
            except BaseException:  # interrupted here (a time limit): the threads stop too
                stop.set()
                raise
        failures = [error for error in errors if error is not None]
        for error in failures[1:]:
            logger.error("inbox: another connection failed too: %r", error)
        if failures:
            raise failures[0]
        for run in runs:
            stats += run.result()
    with sessions() as session:
        earlier = [i for i in unmatched_ids(session, now) if i]
        for start in range(0, len(earlier), 500):
            done = reconcile(session, ReportRow.id.in_(earlier[start : start + 500]), now)
            stats.matched += done.matched
            stats.settled_chunks += done.settled_chunks
        session.commit()
    return stats


def _drain(
    sessions: sessionmaker[Session],
    settings: Settings,
    batch: int,
    now: datetime | None,
    words: frozenset[str],
    stop: threading.Event,
) -> ProcessStats:
    """Claim, parse, store and reconcile batches until none is pending (or another thread failed).
    A batch counts in the returned stats once committed.

    A batch that fails for anything but a lost connection or a deadlock is taken again a body at a
    time, and the body that fails alone is set aside with its error (:func:`set_aside`): one body the
    store cannot hold must not stop every later body of every account, run after run."""
    stats = ProcessStats()
    alone: list[int] = []  # bodies of a failed batch, to be taken one at a time
    try:
        while not stop.is_set():
            only = alone.pop(0) if alone else None
            with sessions() as session:
                one = ProcessStats()
                claimed: list[_Raw] | None = None
                try:
                    claimed = _claim(session, batch, now, only)
                    if claimed is None:
                        if only is not None:
                            continue  # another processor took it meanwhile
                        break
                    _process_batch(session, settings, claimed, words, now, one)
                    session.commit()
                except OperationalError as exc:
                    if getattr(exc.orig, "sqlstate", None) not in _TRY_AGAIN:
                        raise
                    session.rollback()
                    logger.info("inbox: batch rolled back (%s), trying again", type(exc.orig).__name__)
                    continue
                except Exception as exc:
                    session.rollback()
                    if not claimed or not _bodys_fault(exc):
                        raise
                    if len(claimed) > 1:
                        logger.warning(
                            "inbox: a batch of %d bodies failed (%r); one at a time", len(claimed), exc
                        )
                        alone.extend(r.id for r in claimed)
                        continue
                    set_aside(sessions, claimed[0].id, f"{type(exc).__name__}: {exc}", now)
                    logger.error("inbox: body %d set aside: %r", claimed[0].id, exc)
                    one.bodies, one.errors = 1, 1
                stats += one
    except BaseException:
        stop.set()
        raise
    return stats


def _bodys_fault(exc: Exception) -> bool:
    """Whether ``exc`` can come from what a body holds (a value the store refuses, a record the code
    cannot take): then the body is set aside. A lost or broken connection is no body's fault."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, DataError | IntegrityError)
    return not isinstance(exc, OSError | RedisError)


def _process_batch(
    session: Session,
    settings: Settings,
    claimed: list[_Raw],
    words: frozenset[str],
    now: datetime | None,
    stats: ProcessStats,
) -> None:
    open_stage(session)
    parsed: list[Body] = []
    for raw in claimed:
        _process_one(session, settings, raw, words, stats, parsed)
    stats.reports += stage_bodies(session, parsed)
    which = ReportRow.raw_pull_id.in_([r.id for r in claimed])
    done = reconcile_staged(session, which, now)
    stats.matched += done.matched
    stats.settled_chunks += done.settled_chunks


def set_aside(sessions: sessionmaker[Session], raw_id: int, error: str, now: datetime | None = None) -> None:
    """Mark a body processed with ``error`` (its own transaction): it is listed for a person
    (``reports set-aside``) and never taken again by itself."""
    with sessions() as session:
        session.execute(
            update(RawPull)
            .where(RawPull.id == raw_id, RawPull.parsed_at.is_(None))
            .values(parsed_at=now or utcnow(), error=error[:2000]),
            execution_options={"synchronize_session": False},
        )
        session.commit()


@dataclass(frozen=True)
class _Raw:
    id: int
    account: str
    kind: str
    source: str
    body: str
    received_at: datetime
    charset: str | None


def _claim(session: Session, batch: int, now: datetime | None, only: int | None = None) -> list[_Raw] | None:
    """Up to ``batch`` pending bodies (or body ``only``) claimed in this transaction; None when nothing
    is pending. PostgreSQL skips the bodies another transaction holds (SQLite, one writer, renders no
    lock)."""
    pending = (
        RawPull.parsed_at.is_(None) if only is None else (RawPull.id == only) & RawPull.parsed_at.is_(None)
    )
    while True:
        ids = list(
            session.execute(
                select(RawPull.id)
                .where(pending)
                .order_by(RawPull.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if not ids:
            return None
        rows = session.execute(
            update(RawPull)
            .where(RawPull.id.in_(ids), RawPull.parsed_at.is_(None))
            .values(parsed_at=now or utcnow())
            .returning(
                RawPull.id,
                RawPull.account,
                RawPull.kind,
                RawPull.source,
                RawPull.body,
                RawPull.received_at,
                RawPull.charset,
            ),
            execution_options={"synchronize_session": False},
        ).all()
        if rows:
            return sorted((_Raw(*row) for row in rows), key=lambda r: r.id)
        if only is not None:
            return None
        session.rollback()  # another processor took them all meanwhile: look again


def _process_one(
    session: Session,
    settings: Settings,
    raw: _Raw,
    words: frozenset[str],
    stats: ProcessStats,
    parsed: list[Body],
) -> None:
    """Replies are stored now; reports are added to ``parsed``, for the batch's one write to the stage.
    Records the store cannot hold are set aside: the body keeps them in its error, the rest goes on."""
    stats.bodies += 1
    try:
        vendor = vendor_module(settings.account(raw.account).vendor)
        found = parsing.read(vendor, raw.kind, raw.source, raw.body, raw.received_at, raw.charset)
    except (ConfigError, UnsupportedMethodError, ValueError) as exc:
        # Kept with its error: a person can look at the body; it is never parsed again by itself.
        _fail(session, raw.id, f"{type(exc).__name__}: {exc}")
        stats.errors += 1
        return
    if found.rejects:
        shown = "; ".join(found.rejects[:5])
        _fail(session, raw.id, f"{len(found.rejects)} record(s) set aside: {shown}")
        stats.errors += 1
        logger.warning("inbox: body %d: %d record(s) set aside: %s", raw.id, len(found.rejects), shown)
    if raw.kind == "reports":
        parsed.append((raw.account, raw.id, found.reports))
        return
    flagged = [(r, is_optout(r.text, words)) for r in found.replies]
    stats.replies += insert_replies(session, raw.account, raw.id, flagged)
    replies.assign_campaigns(session, raw.account, raw.id)
    # Only a number this account sent to opts out by replying: the records of a pulled list cannot be
    # told apart with certainty (the gateways escape nothing), and a text that spells out a whole record
    # must not opt out a stranger. A reply of any other number is kept and shown, and changes nothing.
    asked = {r.mobile for r, optout in flagged if optout}
    stats.optouts += optout_store.add(
        session,
        sorted(asked & replies.sent_to(session, raw.account, asked)) if asked else [],
        source="reply",
        note=f"reply via {raw.account}",
    )


def _fail(session: Session, raw_id: int, error: str) -> None:
    session.execute(
        update(RawPull).where(RawPull.id == raw_id).values(error=error[:2000]),
        execution_options={"synchronize_session": False},
    )
