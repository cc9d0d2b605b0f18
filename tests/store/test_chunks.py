"""The chunk state machine: one claimant, outcomes written with the state change, expired leases."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dispatcher.store import (
    Attempt,
    CampaignState,
    Chunk,
    ChunkState,
    Outcome,
    Recipient,
    claim_chunk,
    finish_chunk,
    sweep_expired_leases,
    utcnow,
)
from dispatcher.store.chunks import claim_chunks
from tests.store.conftest import T0, Store, make_campaign, make_chunk

MOBILES = ["13900000001", "13900000002"]


def chunk_state(store: Store, chunk_id: int) -> Chunk:
    with store.session() as s:
        return s.get_one(Chunk, chunk_id)


def recipient_states(store: Store, chunk_id: int) -> list[tuple[str, str | None]]:
    with store.session() as s:
        rows = s.execute(select(Recipient.state, Recipient.batch_id).where(Recipient.chunk_id == chunk_id))
        return sorted((state, batch) for state, batch in rows)


def accepted(batch: str = "2314357620085030623") -> Outcome:
    return Outcome(
        ChunkState.ACCEPTED,
        started_at=T0,
        finished_at=T0 + timedelta(milliseconds=250),
        batch_id=batch,
        request={"userCode": "u1", "userPass": "hunter2", "DesNo": "13900000001,13900000002"},
        answer='<string xmlns="http://tempuri.org/">2314357620085030623</string>',
        url_used="http://yes.example/api/MsgSend.asmx/SendMsg?userPass=hunter2",
    )


def test_given_queued_chunk_of_running_campaign_when_claimed_then_sending_with_lease(store: Store) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        before = utcnow()
        # When
        assert claim_chunk(s, chunk_id, "w1", lease_seconds=60)
        after = utcnow()
    # Then: the lease runs from the database's clock (the same machine's here, to the millisecond)
    chunk = chunk_state(store, chunk_id)
    assert (chunk.state, chunk.worker_id, chunk.attempts) == ("sending", "w1", 1)
    assert chunk.lease_until is not None
    ms = timedelta(milliseconds=1)
    assert before - ms <= chunk.lease_until - timedelta(seconds=60) <= after + ms
    assert recipient_states(store, chunk_id) == [("sending", None), ("sending", None)]


def test_given_a_queued_chunk_with_settled_recipients_when_claimed_then_only_waiting_ones_are_taken(
    store: Store,
) -> None:
    # Given a chunk re-queued while one of its numbers was already delivered
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, [*MOBILES, "13900000003"])
        s.execute(
            update(Recipient).where(Recipient.mobile == "13900000002").values(state="delivered", batch_id="9")
        )
        s.commit()
        # When it is claimed
        claimed = claim_chunks(s, [chunk_id], "w1", 60)
    # Then only the recipients still waiting are moved to sending and handed to the sender
    assert [r.mobile for r in claimed[chunk_id].recipients] == ["13900000001", "13900000003"]
    assert recipient_states(store, chunk_id) == [("delivered", "9"), ("sending", None), ("sending", None)]


def test_given_claimed_chunk_when_claimed_again_then_second_claim_loses(store: Store) -> None:
    # A redelivered Celery message must do nothing.
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        assert claim_chunk(s, chunk_id, "w1", 60)
        assert not claim_chunk(s, chunk_id, "w2", 60)
    assert chunk_state(store, chunk_id).worker_id == "w1"


@pytest.mark.parametrize("state", [CampaignState.PAUSED, CampaignState.CANCELLED, CampaignState.SCHEDULED])
def test_given_campaign_not_running_when_claimed_then_refused(store: Store, state: CampaignState) -> None:
    with store.session() as s:
        # another campaign is running, so only the chunk's own campaign can be what refuses it
        make_chunk(s, make_campaign(s, CampaignState.RUNNING), 1, ["13900000009"])
        chunk_id = make_chunk(s, make_campaign(s, state), 1, MOBILES)
        assert not claim_chunk(s, chunk_id, "w1", 60)
    assert chunk_state(store, chunk_id).state == "queued"


def test_given_planned_chunk_when_claimed_then_refused(store: Store) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES, state=ChunkState.PLANNED)
        assert not claim_chunk(s, chunk_id, "w1", 60)


def test_given_workers_racing_for_the_same_chunks_then_exactly_one_wins_each(store: Store) -> None:
    # Given 10 queued chunks and 4 workers released at the same instant on each
    with store.session() as s:
        cid = make_campaign(s)
        chunk_ids = [make_chunk(s, cid, seq, [f"139000{seq:05d}"]) for seq in range(10)]
    wins: dict[int, list[str]] = {c: [] for c in chunk_ids}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        try:
            for chunk_id in chunk_ids:
                barrier.wait(timeout=10)
                with store.session() as s:
                    if claim_chunk(s, chunk_id, name, 60):
                        wins[chunk_id].append(name)
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # Then
    assert errors == []
    assert all(len(winners) == 1 for winners in wins.values()), wins
    for chunk_id, winners in wins.items():
        chunk = chunk_state(store, chunk_id)
        assert (chunk.state, chunk.worker_id, chunk.attempts) == ("sending", winners[0], 1)


def test_given_sending_chunk_when_finished_accepted_then_chunk_attempt_and_recipients_agree(
    store: Store,
) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        claim_chunk(s, chunk_id, "w1", 60)
        # When
        assert finish_chunk(s, chunk_id, "w1", accepted())
    # Then
    chunk = chunk_state(store, chunk_id)
    assert (chunk.state, chunk.batch_id, chunk.lease_until) == ("accepted", "2314357620085030623", None)
    assert chunk.accepted_at == T0 + timedelta(milliseconds=250)
    assert recipient_states(store, chunk_id) == [("accepted", "2314357620085030623")] * 2
    with store.session() as s:
        attempt = s.scalars(select(Attempt).where(Attempt.chunk_id == chunk_id)).one()
        submitted = s.scalars(select(Recipient.submitted_at).where(Recipient.chunk_id == chunk_id)).all()
    assert (attempt.outcome, attempt.duration_ms, attempt.worker_id) == ("accepted", 250, "w1")
    assert attempt.request == {"userCode": "u1", "userPass": "***", "DesNo": "13900000001,13900000002"}
    assert attempt.url_used is not None and "hunter2" not in attempt.url_used
    assert submitted == [T0 + timedelta(milliseconds=250)] * 2


def test_given_failed_outcome_when_finished_then_recipients_failed_with_class_and_code(store: Store) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        claim_chunk(s, chunk_id, "w1", 60)
        outcome = Outcome(ChunkState.FAILED, T0, T0, error_class="bad_content", code="-6", detail="促销")
        assert finish_chunk(s, chunk_id, "w1", outcome)
        rows = s.execute(select(Recipient.state, Recipient.error_class, Recipient.vendor_code)).all()
    assert sorted(tuple(r) for r in rows) == [("failed", "bad_content", "-6")] * 2
    chunk = chunk_state(store, chunk_id)
    assert (chunk.state, chunk.error_class, chunk.code, chunk.detail) == (
        "failed",
        "bad_content",
        "-6",
        "促销",
    )


def test_given_rate_limited_when_finished_queued_then_claimable_again_after_backoff(store: Store) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        claim_chunk(s, chunk_id, "w1", 60)
        outcome = Outcome(ChunkState.QUEUED, T0, T0, error_class="rate_limited", code="-23",
                          not_before=T0 + timedelta(seconds=5))  # fmt: skip
        assert finish_chunk(s, chunk_id, "w1", outcome)
        # Then: back in the queue with its backoff, and another worker can take it
        assert chunk_state(store, chunk_id).not_before == T0 + timedelta(seconds=5)
        assert recipient_states(store, chunk_id) == [("queued", None)] * 2
        assert claim_chunk(s, chunk_id, "w2", 60)
    assert chunk_state(store, chunk_id).attempts == 2


def test_given_a_backoff_in_seconds_when_finished_queued_then_due_by_the_database_clock(store: Store) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        claim_chunk(s, chunk_id, "w1", 60)
        before = utcnow()
        outcome = Outcome(ChunkState.QUEUED, T0, T0, error_class="retry_later", code="-1", retry_in=30.0)
        assert finish_chunk(s, chunk_id, "w1", outcome)
        # Then: not due for 30 s from the database's now (not from the worker's clock, T0 here)
        not_before = chunk_state(store, chunk_id).not_before
        assert not_before is not None and not_before >= before + timedelta(seconds=29)
        assert not claim_chunk(s, chunk_id, "w2", 60)


def test_given_an_outside_hours_answer_when_finished_uncounted_then_the_attempt_is_given_back(
    store: Store,
) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        claim_chunk(s, chunk_id, "w1", 60)
        outcome = Outcome(ChunkState.QUEUED, T0, T0, code="-8", not_before=T0, counted=False)
        assert finish_chunk(s, chunk_id, "w1", outcome)
        assert claim_chunk(s, chunk_id, "w1", 60)
    assert chunk_state(store, chunk_id).attempts == 1  # the first one did not count


def test_given_chunk_owned_by_another_when_finished_then_refused_but_attempt_kept(store: Store) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        claim_chunk(s, chunk_id, "w1", 60)
        # When a worker that does not hold the chunk reports an outcome
        assert not finish_chunk(s, chunk_id, "w2", accepted())
        attempt = s.scalars(select(Attempt)).one()
    # Then: the chunk is untouched, the evidence is kept
    assert chunk_state(store, chunk_id).state == "sending"
    assert (attempt.outcome, attempt.worker_id) == ("late_accepted", "w2")


def test_given_expired_lease_when_swept_then_unknown_and_the_late_answer_settles_it(store: Store) -> None:
    with store.session() as s:
        cid = make_campaign(s)
        expired = make_chunk(s, cid, 1, MOBILES)
        alive = make_chunk(s, cid, 2, ["13900000003"])
        claim_chunk(s, expired, "w1", -1)  # a lease already over by the database's clock
        claim_chunk(s, alive, "w2", 300)
        # When the sweeper runs
        assert sweep_expired_leases(s) == [expired]
        # Then: unknown (never retried automatically), the other lease untouched
        assert chunk_state(store, expired).state == "unknown"
        assert recipient_states(store, expired) == [("unknown", None)] * 2
        assert chunk_state(store, alive).state == "sending"
        assert not claim_chunk(s, expired, "w1", 30)
        # And the worker's answer, coming back late, settles the unknown chunk with its batch id
        assert finish_chunk(s, expired, "w1", accepted())
        late = s.scalars(select(Attempt).where(Attempt.chunk_id == expired)).one()
    assert (late.outcome, late.answer is not None) == ("late_accepted", True)
    assert chunk_state(store, expired).state == "accepted"
    assert recipient_states(store, expired) == [("accepted", "2314357620085030623")] * 2


def test_given_a_swept_chunk_retried_by_an_operator_when_the_late_answer_comes_then_it_is_only_evidence(
    store: Store,
) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        claim_chunk(s, chunk_id, "w1", -1)
        sweep_expired_leases(s)
        # Given an operator re-sent it meanwhile (attempt 2, by another worker, still in flight)
        s.execute(update(Chunk).where(Chunk.id == chunk_id).values(state="queued"))
        s.execute(update(Recipient).values(state="queued"))
        s.commit()
        assert claim_chunk(s, chunk_id, "w2", 60)
        # When attempt 1's answer arrives
        assert not finish_chunk(s, chunk_id, "w1", accepted())
    # Then attempt 2 is left alone
    assert (chunk_state(store, chunk_id).state, chunk_state(store, chunk_id).worker_id) == ("sending", "w2")


def test_given_outcome_sending_when_finished_then_value_error(store: Store) -> None:
    with store.session() as s, pytest.raises(ValueError):
        finish_chunk(s, 1, "w1", Outcome(ChunkState.SENDING, T0, T0))


def test_given_a_swept_chunk_retried_but_not_sent_again_when_the_late_answer_comes_then_it_settles_it(
    store: Store,
) -> None:
    with store.session() as s:
        chunk_id = make_chunk(s, make_campaign(s), 1, MOBILES)
        claim_chunk(s, chunk_id, "w1", -1)
        sweep_expired_leases(s)
        # Given an operator re-queued the unknown chunk, and no worker has claimed it yet
        s.execute(update(Chunk).values(state="queued", requeued_from_unknown=True))
        s.execute(update(Recipient).values(state="queued"))
        s.commit()
        # When attempt 1's answer arrives: accepted
        assert finish_chunk(s, chunk_id, "w1", accepted())
        # Then the re-send is spared: nothing is left to claim
        assert not claim_chunk(s, chunk_id, "w2", 60)
    assert chunk_state(store, chunk_id).state == "accepted"
    assert recipient_states(store, chunk_id) == [("accepted", "2314357620085030623")] * 2
