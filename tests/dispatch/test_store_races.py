"""Interleavings at the store: operators' actions on one campaign, a busy store while a worker records
the vendor's answer, a late answer in a campaign that looked finished. Real store (SQLite, and
PostgreSQL when configured), real HTTP to the simulator.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text

from dispatcher import campaigns, scheduler
from dispatcher.decisions import SendAttempt, interpret
from dispatcher.dispatch import build_request, load_group, record_attempts
from dispatcher.errors import StateError
from dispatcher.store import Chunk, make_engine, session_factory, sweep_expired_leases, utcnow
from dispatcher.store.chunks import claim_chunks
from tests.dispatch.scenario import (
    FIRST,
    chunks,
    create,
    ledger,
    numbers,
    recipients,
    runtime_for,
    send,
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_given_a_cancel_when_a_pause_comes_between_its_read_and_its_write_then_they_do_not_interleave(
    make_stack: Any, engine: Engine
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", numbers(3))
    campaigns.start(stack.sessions, campaign_id, "t")
    pauses: list[threading.Thread] = []
    refused: list[Exception] = []

    def pause() -> None:
        try:
            campaigns.pause(stack.sessions, campaign_id, "p")
        except StateError as exc:
            refused.append(exc)

    def a_person_pauses(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Right after the cancel's first look at the campaign, another person pauses it
        if pauses or "campaigns" not in statement.lower():
            return
        pauses.append(threading.Thread(target=pause))
        pauses[0].start()
        pauses[0].join(timeout=1)  # a campaign lock makes the pause wait for the cancel

    event.listen(engine, "after_cursor_execute", a_person_pauses)
    with contextlib.suppress(StateError):  # the pause came first: the cancel must then change nothing
        campaigns.cancel(session_factory(engine), campaign_id, "c")
    pauses[0].join(timeout=30)

    # Then the campaign's state and its chunks agree: never a paused campaign whose numbers were
    # closed as cancelled (a resume would then "complete" it with nobody sent)
    with stack.sessions() as session:
        state = campaigns.get(session, campaign_id).state
    closed = {s for s, _, _ in recipients(stack, campaign_id).values()}
    assert (state, closed) in (("cancelled", {"cancelled"}), ("paused", {"queued"}))
    assert bool(refused) == (state == "cancelled")


def _hold_the_store(url: str, chunk_id: int, held: threading.Event, release: threading.Event) -> None:
    """Another writer holds the store (SQLite: its one write lock; PostgreSQL: the chunk's row)."""
    other = make_engine(url)
    try:
        with other.connect() as conn:
            if other.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("SELECT id FROM chunks WHERE id = :i FOR UPDATE"), {"i": chunk_id})
            held.set()
            release.wait(timeout=30)
            conn.rollback()
    finally:
        other.dispose()


def test_given_a_busy_store_when_a_worker_records_the_vendors_answer_then_it_waits_and_records_it(
    make_stack: Any, database_url: str
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "webservice")
    campaign_id = create(stack, "webservice", [str(FIRST)])
    (chunk_id,) = campaigns.start(stack.sessions, campaign_id, "t")
    impatient = make_engine(database_url)

    @event.listens_for(impatient, "connect")
    def short_waits(dbapi_connection: Any, _record: Any) -> None:
        # Give up on a lock after 0.2 s (SQLite's "database is locked"; PostgreSQL's lock timeout)
        cursor = dbapi_connection.cursor()
        if impatient.dialect.name == "sqlite":
            cursor.execute("PRAGMA busy_timeout = 200")
        else:
            cursor.execute("SET lock_timeout = 200")
        cursor.close()

    held, release = threading.Event(), threading.Event()
    blocker = threading.Thread(target=_hold_the_store, args=(database_url, chunk_id, held, release))

    def busy_at_the_record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Just as the worker records the answer, another writer holds the store for 1.5 s
        if (
            not blocker.is_alive()
            and not held.is_set()
            and statement.lstrip().upper().startswith("UPDATE CHUNKS")
        ):
            blocker.start()
            held.wait(timeout=10)
            threading.Timer(1.5, release.set).start()

    sessions = session_factory(impatient)
    try:
        with sessions() as session:
            claimed = claim_chunks(session, [chunk_id], "w1", 120)
        (row,) = load_group(sessions, [chunk_id])
        response = runtime.transport.send(build_request(runtime, row, claimed[chunk_id].pairs))
        now = utcnow()
        attempt = SendAttempt(
            row,
            claimed[chunk_id],
            interpret(runtime.vendor, body=response.text),
            now,
            now,
            None,
            response.text,
        )
        event.listen(impatient, "before_cursor_execute", busy_at_the_record)
        # When the worker records the vendor's acceptance while the store is busy
        (result,) = record_attempts(sessions, "w1", [attempt])
    finally:
        release.set()
        impatient.dispose()
    blocker.join(timeout=30)

    # Then it waited for the store rather than lose the answer (the chunk would be swept "unknown")
    assert result.state == "accepted"
    assert recipients(stack, campaign_id)[str(FIRST)][0] == "accepted"
    assert ledger(stack)[str(FIRST)] == 1


def test_given_a_sent_campaign_when_a_late_answer_requeues_a_chunk_then_the_campaign_runs_again(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "webservice")
    mobiles = numbers(2)
    campaign_id = create(stack, "webservice", mobiles)
    late_id, sent_id = campaigns.start(stack.sessions, campaign_id, "t")
    # Given one chunk swept mid-send (unknown) and the other accepted: the campaign is "sent"
    with stack.sessions() as session:
        claimed = claim_chunks(session, [late_id], "w1", -1)
        assert sweep_expired_leases(session) == [late_id]
    send(stack, runtime, [sent_id])
    scheduler.complete_finished(stack.sessions)
    with stack.sessions() as session:
        assert campaigns.get(session, campaign_id).state == "sent"

    # When the swept request's answer comes after all: "try again later" (it was not taken)
    (row,) = load_group(stack.sessions, [late_id])
    request = build_request(runtime, row, claimed[late_id].pairs)
    now = utcnow()
    late = SendAttempt(row, claimed[late_id], interpret(runtime.vendor, body="-1"), now, now, request, "-1")
    record_attempts(stack.sessions, "w1", [late])

    # Then the campaign runs again at once, and the chunk is sent by the next worker that has it
    with stack.sessions() as session:
        assert campaigns.get(session, campaign_id).state == "running"
        session.execute(Chunk.__table__.update().values(not_before=None))
        session.commit()
    send(stack, runtime, [late_id])
    assert {c.state for c in chunks(stack, campaign_id)} == {"accepted"}
    assert ledger(stack) == {m: 1 for m in mobiles}
    with stack.sessions() as session:
        assert session.execute(select(Chunk.state).where(Chunk.id == late_id)).scalar_one() == "accepted"
