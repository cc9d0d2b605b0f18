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

from sqlalchemy import insert, select, update
from sqlalchemy.exc import OperationalError
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


def record_raw(session: Session, account: str, kind: Kind, source: Source, body: str) -> int:
    """Store a pulled or pushed body as it came, and COMMIT; returns its id."""
    raw_id = session.execute(
        insert(RawPull)
        .values(account=account, kind=kind, source=source, body=body, received_at=utcnow())
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
    reports (a report may arrive before its batch id is recorded). Idempotent; safe concurrently."""
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
        earlier = [i for i in unmatched_ids(session) if i]
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
    A batch counts in the returned stats once committed."""
    stats = ProcessStats()
    try:
        while not stop.is_set():
            with sessions() as session:
                one = ProcessStats()
                try:
                    claimed = _claim(session, batch, now)
                    if claimed is None:
                        break
                    open_stage(session)
                    parsed: list[Body] = []
                    for raw in claimed:
                        _process_one(session, settings, raw, words, one, parsed)
                    one.reports += stage_bodies(session, parsed)
                    which = ReportRow.raw_pull_id.in_([r.id for r in claimed])
                    done = reconcile_staged(session, which, now)
                    one.matched += done.matched
                    one.settled_chunks += done.settled_chunks
                    session.commit()
                except OperationalError as exc:
                    if getattr(exc.orig, "sqlstate", None) not in _TRY_AGAIN:
                        raise
                    session.rollback()
                    logger.info("inbox: batch rolled back (%s), trying again", type(exc.orig).__name__)
                    continue
                stats += one
    except BaseException:
        stop.set()
        raise
    return stats


@dataclass(frozen=True)
class _Raw:
    id: int
    account: str
    kind: str
    source: str
    body: str


def _claim(session: Session, batch: int, now: datetime | None) -> list[_Raw] | None:
    """Up to ``batch`` pending bodies claimed in this transaction; None when nothing is pending.
    PostgreSQL skips the bodies another transaction holds (SQLite, one writer, renders no lock)."""
    while True:
        ids = list(
            session.execute(
                select(RawPull.id)
                .where(RawPull.parsed_at.is_(None))
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
            .returning(RawPull.id, RawPull.account, RawPull.kind, RawPull.source, RawPull.body),
            execution_options={"synchronize_session": False},
        ).all()
        if rows:
            return sorted((_Raw(*row) for row in rows), key=lambda r: r.id)
        session.rollback()  # another processor took them all meanwhile: look again


def _process_one(
    session: Session,
    settings: Settings,
    raw: _Raw,
    words: frozenset[str],
    stats: ProcessStats,
    parsed: list[Body],
) -> None:
    """Replies are stored now; reports are added to ``parsed``, for the batch's one write to the stage."""
    stats.bodies += 1
    try:
        vendor = vendor_module(settings.account(raw.account).vendor)
        if raw.kind == "reports":
            records = (
                parsing.pulled_reports(vendor, raw.body)
                if raw.source == "pull"
                else parsing.pushed_reports(vendor, raw.body)[1]
            )
            parsed.append((raw.account, raw.id, records))
            return
        found = (
            parsing.pulled_replies(vendor, raw.body)
            if raw.source == "pull"
            else parsing.pushed_replies(vendor, raw.body)[1]
        )
    except (ConfigError, UnsupportedMethodError, ValueError) as exc:
        # Kept with its error: a person can look at the body; it is never parsed again by itself.
        _fail(session, raw.id, exc)
        stats.errors += 1
        return
    flagged = [(r, is_optout(r.text, words)) for r in found]
    stats.replies += insert_replies(session, raw.account, raw.id, flagged)
    replies.assign_campaigns(session, raw.account, raw.id)
    stats.optouts += optout_store.add(
        session,
        [r.mobile for r, optout in flagged if optout],
        source="reply",
        note=f"reply via {raw.account}",
    )


def _fail(session: Session, raw_id: int, exc: Exception) -> None:
    session.execute(
        update(RawPull).where(RawPull.id == raw_id).values(error=f"{type(exc).__name__}: {exc}"[:2000]),
        execution_options={"synchronize_session": False},
    )
