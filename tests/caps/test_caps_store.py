"""Frequency caps on the store, the edges: re-sent unknown requests, two claims either side of China's
midnight, the order in which a split gives counts back, pruning, and the account a cap follows after a
failover. SQLite, and PostgreSQL when configured."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import event, select, update

from dispatcher import campaigns, failover, runtime
from dispatcher.store import Recipient
from dispatcher.store.caps import CapCheck, count_and_cap, prune, today
from dispatcher.store.chunks import claim_chunks, split_chunk, sweep_expired_leases
from dispatcher.store.models import Campaign, ContactCount
from tests.caps.helpers import _caps, _create
from tests.stack import Stack
from workers import tasks

M1, M2 = "13900000001", "13900000002"


def _counts(stack: Stack) -> dict[tuple[str, date], int]:
    with stack.sessions() as session:
        rows = session.execute(select(ContactCount.mobile, ContactCount.day, ContactCount.sent)).all()
    return {(m, d): n for m, d, n in rows if n}


def _unknown_then_retried(stack: Stack, campaign_id: int, check: CapCheck, *, counted_on: date) -> list[int]:
    """Claim the campaign's chunks (counted), lose their worker (swept: unknown), move the count to
    ``counted_on`` (when the first send went out), and re-queue them as ``retry --include-unknown``."""
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:
        assert claim_chunks(session, ids, "w1", 0, caps=check)
    time.sleep(0.05)
    with stack.sessions() as session:
        assert sorted(sweep_expired_leases(session)) == sorted(ids)
        day = today(session.connection())
        if counted_on != day:
            session.execute(update(ContactCount).where(ContactCount.day == day).values(day=counted_on))
            session.execute(update(Recipient).values(counted_on=counted_on))
        session.commit()
    return campaigns.retry(stack.sessions, campaign_id, "t", include_unknown=True)


def test_given_an_unknown_request_resent_the_same_day_then_it_is_counted_once_and_not_capped_by_itself(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(worker=False)
    _caps(stack, 'frequency_caps = ["1/1d"]')
    check = CapCheck(stack.settings.caps_for(stack.accounts["trigger"]))
    first = _create(stack, [M1])
    with stack.sessions() as session:
        day = today(session.connection())
    again = _unknown_then_retried(stack, first, check, counted_on=day)
    with stack.sessions() as session:
        claimed = claim_chunks(session, again, "w2", 60, caps=check)
    assert [r.mobile for c in claimed.values() for r in c.recipients] == [M1]  # sent again, not capped
    assert _counts(stack) == {(M1, day): 1}  # and counted once


def test_given_an_unknown_request_resent_on_a_later_day_then_its_count_moves_to_that_day(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(worker=False)
    _caps(stack, 'frequency_caps = ["1/1d", "2/7d"]')
    check = CapCheck(stack.settings.caps_for(stack.accounts["trigger"]))
    first = _create(stack, [M1])
    with stack.sessions() as session:
        day = today(session.connection())
    again = _unknown_then_retried(stack, first, check, counted_on=day - timedelta(days=1))
    with stack.sessions() as session:
        claimed = claim_chunks(session, again, "w2", 60, caps=check)
        counted_on = session.execute(select(Recipient.counted_on)).scalar_one()
    # Then: sent once more, counted once, on the day the re-send goes out
    assert [r.mobile for c in claimed.values() for r in c.recipients] == [M1]
    assert _counts(stack) == {(M1, day): 1}
    assert counted_on == day


def test_given_an_unknown_request_resent_on_a_later_day_then_it_is_checked_against_the_caps(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(worker=False)
    _caps(stack, 'frequency_caps = ["1/1d"]')
    check = CapCheck(stack.settings.caps_for(stack.accounts["trigger"]))
    first = _create(stack, [M1])
    with stack.sessions() as session:
        day = today(session.connection())
    yesterday = day - timedelta(days=1)
    again = _unknown_then_retried(stack, first, check, counted_on=yesterday)
    # Meanwhile another campaign sent the number today
    other = campaigns.start(stack.sessions, _create(stack, [M1]), "t")
    with stack.sessions() as session:
        assert claim_chunks(session, other, "w3", 60, caps=check)
    with stack.sessions() as session:
        claimed = claim_chunks(session, again, "w2", 60, caps=check)
        state, counted_on = session.execute(
            select(Recipient.state, Recipient.counted_on).where(Recipient.campaign_id == first)
        ).one()
    # Then: the re-send is capped; yesterday's send, which may have reached the person, stays counted
    assert not [r for c in claimed.values() for r in c.recipients]
    assert state == "capped" and counted_on == yesterday
    assert _counts(stack) == {(M1, yesterday): 1, (M1, day): 1}


def test_given_two_claims_either_side_of_midnight_then_a_two_day_cap_lets_one_through(
    make_stack: Callable[..., Stack],
) -> None:
    # Given: a 1/2d cap, one number in two campaigns, a claim counting it at 23:59 not yet committed
    stack = make_stack(worker=False)
    _caps(stack, 'frequency_caps = ["1/2d"]')
    check = CapCheck(stack.settings.caps_for(stack.accounts["trigger"]))
    ids = [campaigns.start(stack.sessions, _create(stack, [M1]), "t")[0] for _ in range(2)]
    with stack.sessions() as session:
        rows = session.execute(select(Recipient.chunk_id, Recipient.id, Recipient.mobile)).all()
    claimed = {chunk: (chunk, rid, m, None) for chunk, rid, m in rows}
    day = date(2026, 12, 7)
    late = stack.sessions()
    assert count_and_cap(late.connection(), check, [claimed[ids[0]]], day=day) == {}
    # When: the other claim counts it at 00:00 the next day, meanwhile
    found: list[Any] = []

    def after_midnight() -> None:
        with stack.sessions() as session:
            found.append(
                count_and_cap(session.connection(), check, [claimed[ids[1]]], day=day + timedelta(days=1))
            )
            session.commit()

    thread = threading.Thread(target=after_midnight)
    thread.start()
    thread.join(0.5)
    waited = thread.is_alive()
    late.commit()
    late.close()
    thread.join(30)
    # Then: it waited for the first, and is capped
    assert waited
    assert len(found) == 1 and len(found[0]) == 1
    assert _counts(stack) == {(M1, day): 1}


def _flat(value: Any) -> Iterator[Any]:
    """Every scalar in a statement's parameters, JSON lists opened, in order."""
    if isinstance(value, str) and value.startswith("["):
        value = json.loads(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        for item in value:
            yield from _flat(item)
    else:
        yield value


@contextmanager
def _count_writes(stack: Stack) -> Iterator[list[list[str]]]:
    """The numbers of each statement that writes ``contact_counts``, in the order it writes them."""
    writes: list[list[str]] = []
    engine = stack.sessions.kw["bind"]

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "contact_counts" in statement and not statement.lstrip().upper().startswith("SELECT"):
            writes.append([v for v in _flat(params) if v in (M1, M2)])

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield writes
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_given_a_split_then_its_counts_are_given_back_in_one_number_order(
    make_stack: Callable[..., Stack],
) -> None:
    # Given: one request of two numbers, claimed and counted, split with the larger number first
    stack = make_stack(worker=False)
    _caps(stack, 'frequency_caps = ["1/1d"]')
    check = CapCheck(stack.settings.caps_for(stack.accounts["trigger"]))
    (chunk,) = campaigns.start(stack.sessions, _create(stack, [M1, M2]), "t")
    with stack.sessions() as session:
        claim_chunks(session, [chunk], "w1", 60, caps=check)
        of = dict(session.execute(select(Recipient.mobile, Recipient.id)).tuples().all())
    # When: it is split, the part of M2 first
    with _count_writes(stack) as writes, stack.sessions() as session:
        split_chunk(session, chunk, [[of[M2]], [of[M1]]], "t")
        session.commit()
    # Then: one statement gives both back, in number order (PostgreSQL's row locks: no deadlock)
    assert writes == [[M1, M2]]
    assert _counts(stack) == {}


def test_given_counts_older_than_the_longest_window_then_they_are_pruned(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(worker=False)
    _caps(stack, 'frequency_caps = ["1/1d", "3/7d"]')
    with stack.sessions() as session:
        day = today(session.connection())
        session.add_all(
            ContactCount(mobile=M1, day=day - timedelta(days=back), sent=1) for back in (0, 6, 7, 30)
        )
        session.commit()
    # When: the beat prunes (hourly)
    entry = stack.app.conf.beat_schedule["prune_counts"]
    assert (entry["task"], entry["schedule"]) == (tasks.PRUNE_COUNTS, 3600.0)
    assert stack.app.tasks[tasks.PRUNE_COUNTS]() == 2
    with stack.sessions() as session:
        assert prune(session, stack.settings) == 0
    # Then: what the 7-day window still reads is kept
    assert _counts(stack) == {(M1, day): 1, (M1, day - timedelta(days=6)): 1}


def test_given_a_failover_then_the_caps_of_the_account_that_sends_apply(
    make_stack: Callable[..., Stack],
) -> None:
    # Given: no global cap; the fallback account has its own 1/1d; the number got one message today
    stack = make_stack(worker=False)
    main, fallback = stack.accounts["yunxin"], stack.accounts["trigger"]
    path = stack.tmp / "dispatcher.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            f'[accounts."{fallback}"]\n', f'[accounts."{fallback}"]\nfrequency_caps = ["1/1d"]\n'
        ),
        encoding="utf-8",
    )
    _caps(stack, "")
    current = runtime.current()
    assert current.account(main).caps == CapCheck(())  # counted, never capped on the main account
    earlier = campaigns.start(stack.sessions, _create(stack, [M1], vendor="yunxin"), "t")
    with stack.sessions() as session:
        assert claim_chunks(session, earlier, "w1", 60, account=main, caps=current.account(main).caps)
    # When: a campaign on the main account fails over to the fallback, and the fallback's worker claims
    campaign_id = _create(stack, [M1], vendor="yunxin", fallbacks=[fallback])
    campaigns.start(stack.sessions, campaign_id, "t")
    campaigns.pause(stack.sessions, campaign_id, "t")
    moved = failover.switch(stack.sessions, stack.settings, campaign_id, "test")  # and resumes it
    with stack.sessions() as session:
        assert session.get(Campaign, campaign_id).account == fallback  # type: ignore[union-attr]
        assert not claim_chunks(session, moved, "w1", 60, account=main, caps=current.account(main).caps)
        claim_chunks(session, moved, "w2", 60, account=fallback, caps=current.account(fallback).caps)
        state = session.execute(
            select(Recipient.state).where(Recipient.campaign_id == campaign_id)
        ).scalar_one()
    # Then: the fallback's cap held it back
    assert state == "capped"
