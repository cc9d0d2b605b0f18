"""Frequency caps: at most N messages to one number in K China calendar days, over every campaign and
account. Pure rules first, then on the store (SQLite, and PostgreSQL when configured) with real workers
and the simulator: two campaigns sending the same numbers at once cannot both pass a 1/1d cap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from dispatcher import campaigns, proofs
from dispatcher.caps import Cap, china_day, over, parse_caps
from dispatcher.errors import ConfigError
from dispatcher.store import ChunkState, Recipient
from dispatcher.store.caps import CapCheck
from dispatcher.store.chunks import Outcome, claim_chunks, finish_chunk
from dispatcher.store.models import ContactCount
from tests.caps.helpers import _caps, _create
from tests.dispatch.scenario import finished, numbers
from tests.stack import Stack, write_contacts
from workers.tasks import enqueue

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"

# ---- pure ------------------------------------------------------------------------------------------


def test_given_caps_as_written_then_they_parse_and_bad_ones_are_refused_naming_the_setting() -> None:
    assert parse_caps(["3/7d", "1/1d", " 1 / 1d "], "setting frequency_caps") == (Cap(1, 1), Cap(3, 7))
    for bad in (["1/0d"], ["0/1d"], ["1 per day"], "1/1d", [1]):
        with pytest.raises(ConfigError, match="frequency_caps"):
            parse_caps(bad, "setting frequency_caps")


def test_given_what_a_number_got_then_over_counts_china_days_ending_today() -> None:
    today = date(2026, 12, 7)
    got = {date(2026, 12, 1): 1, date(2026, 12, 5): 1, date(2026, 12, 7): 1}
    caps = (Cap(1, 1), Cap(3, 7))
    assert over(got, today, caps, 1) == (1, Cap(1, 1))  # one today already
    assert over({date(2026, 12, 1): 1, date(2026, 12, 5): 2}, today, caps, 1) == (1, Cap(3, 7))
    assert over({date(2026, 11, 30): 5}, today, caps, 1) == (0, None)  # eight days ago: out of the window
    assert over({}, today, (Cap(2, 1),), 3) == (1, Cap(2, 1))  # three at once, two allowed
    # 23:30 UTC is already the next day in China
    assert china_day(datetime(2026, 12, 6, 23, 30, tzinfo=UTC)) == today


# ---- on the store ----------------------------------------------------------------------------------


def _states(stack: Stack, campaign_id: int) -> Counter[str]:
    with stack.sessions() as session:
        return Counter(
            session.execute(select(Recipient.state).where(Recipient.campaign_id == campaign_id)).scalars()
        )


def test_given_a_1_per_day_cap_when_two_campaigns_of_the_same_numbers_start_together_then_each_number_gets_one(
    make_stack: Callable[..., Stack],
) -> None:
    # Given: a 1/1d cap, two campaigns of the same 60 numbers (different texts), real workers (4 threads)
    stack = make_stack()
    _caps(stack, 'frequency_caps = ["1/1d"]')
    mobiles = numbers(60)
    first, second = _create(stack, mobiles), _create(stack, mobiles)
    # When: both start at once
    ids = campaigns.start(stack.sessions, first, "t") + campaigns.start(stack.sessions, second, "t")
    enqueue(sorted(ids), app=stack.app, group=2)  # small tasks: the two campaigns' claims interleave
    stack.wait_for(lambda: finished(stack, first) and finished(stack, second), 90)
    # Then: the vendor took each number once, and the other recipient of each number is capped
    taken = Counter(e["mobile"] for e in stack.sim.ledger()["accepted"])
    assert taken == Counter(mobiles)
    states = _states(stack, first) + _states(stack, second)
    assert states["capped"] == 60 and states["accepted"] + states["delivered"] == 60
    with stack.sessions() as session:
        status = campaigns.status(session, second)
        reason = session.execute(
            select(Recipient.reject_code, Recipient.reject_params).where(Recipient.state == "capped")
        ).first()
    assert status["capped"] == _states(stack, second)["capped"]
    assert reason is not None and reason[0] == "capped" and reason[1] == {"count": 1, "days": 1}


def test_given_a_send_the_vendor_refused_then_its_count_is_given_back(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(worker=False)
    _caps(stack, 'frequency_caps = ["1/1d"]')
    check = CapCheck(stack.settings.caps_for(stack.accounts["trigger"]))
    first = _create(stack, ["13900000001"])
    (chunk,) = campaigns.start(stack.sessions, first, "t")
    with stack.sessions() as session:
        assert claim_chunks(session, [chunk], "w1", 60, caps=check)[chunk].pairs  # counted, sent
    with stack.sessions() as session:
        assert session.execute(select(ContactCount.sent)).scalar_one() == 1
    # When: the vendor refused it (a bad number, say)
    now = datetime.now(UTC)
    with stack.sessions() as session:
        assert finish_chunk(
            session, chunk, "w1", Outcome(ChunkState.FAILED, now, now, error_class="bad_recipient")
        )
    # Then: the day's count is back to 0, and another campaign may send to the number
    with stack.sessions() as session:
        assert session.execute(select(ContactCount.sent)).scalar_one() == 0
        assert session.execute(select(Recipient.counted_on)).scalar_one() is None
    second = _create(stack, ["13900000001"])
    (again,) = campaigns.start(stack.sessions, second, "t")
    with stack.sessions() as session:
        assert claim_chunks(session, [again], "w1", 60, caps=check)[again].pairs


def test_given_a_transactional_campaign_or_a_proof_then_they_are_neither_capped_nor_counted(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(worker=False)
    _caps(stack, 'frequency_caps = ["1/1d"]')
    account = stack.accounts["trigger"]
    check = CapCheck(stack.settings.caps_for(account))
    marketing = _create(stack, ["13900000001"])
    transactional = _create(stack, ["13900000001"], transactional=True)
    proof = proofs.send(
        stack.sessions, stack.settings, account, "您好【测试】", ["13900000001"], actor="t", name="样张"
    )
    ids = campaigns.start(stack.sessions, marketing, "t") + campaigns.start(
        stack.sessions, transactional, "t"
    )
    with stack.sessions() as session:
        claimed = claim_chunks(session, [*ids, *proof.chunk_ids], "w1", 60, caps=check)
    # Then: all three go; only the marketing one counted
    assert all(claimed[i].pairs for i in [*ids, *proof.chunk_ids])
    with stack.sessions() as session:
        assert session.execute(select(ContactCount.sent)).scalar_one() == 1
        assert session.execute(select(Recipient.state).where(Recipient.state == "capped")).first() is None


def test_given_caps_when_check_runs_then_it_says_how_many_would_be_capped_now(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(worker=False)
    _caps(stack, 'frequency_caps = ["1/1d"]')
    account = stack.accounts["trigger"]
    sent = _create(stack, ["13900000001", "13900000002"])
    ids = campaigns.start(stack.sessions, sent, "t")
    with stack.sessions() as session:
        claim_chunks(session, ids, "w1", 60, caps=CapCheck(stack.settings.caps_for(account)))
    path = write_contacts(stack.tmp / "next.xlsx", [("13900000001", "王"), ("13900000003", "李")])
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher", "check", str(path), "--template", TEMPLATE, "--account", account, "--json"],
        capture_output=True, text=True, env=os.environ, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["capped"] == 1
